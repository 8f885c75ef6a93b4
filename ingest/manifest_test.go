package ingest

import (
	"fmt"
	"slices"
	"strings"
)

// This package knows no provider of its own, so its tests register three
// test-only providers, one of each shape the machinery serves; the shipped
// providers' rules are tested in their own packages.
//
//   - esim registers an eUICC by EID, with required fields, and checks
//     one of them (cmp) against a list, correcting its case.
//   - simcard keys a SIM by its CLI, bracketed, under an account.
//   - device activates a device by EID under an account name, with an
//     all-or-nothing name and address.
func init() {
	RegisterManifest("esim", Manifest{
		Required: []string{ColEID, ColCMP, ColEUICCAgreementID, ColLocaleID},
		Fields:   checkTestPlatform,
	})
	RegisterManifest("simcard", Manifest{
		Required: []string{ColCLI, ColAccount},
		CLI:      CLIForm{IMSIMin: 14, IMSIMax: 16, Bracketed: true},
		Fields:   func(c *FieldCheck) { c.Require(ColAccount) },
	})
	address := []string{ColFirstName, ColLastName, ColCity}
	RegisterManifest("device", Manifest{
		Required: []string{ColEID, ColAccountName},
		Groups:   []FieldGroup{{Any: address, Required: address}},
		Fields: func(c *FieldCheck) {
			c.Require(ColAccountName)
			if slices.ContainsFunc(address, func(col string) bool { return c.Get(col) != "" }) {
				for _, col := range address {
					c.RequireWhen(col, "when a name or address is given")
				}
			}
		},
	})
}

// testPlatforms are the cmp values esim takes.
var testPlatforms = []string{"IOTA_EU", "ARQIA_BR"}

func checkTestPlatform(c *FieldCheck) {
	if cmp, ok := c.Require(ColCMP); ok && !slices.Contains(testPlatforms, cmp) {
		if up := strings.ToUpper(cmp); slices.Contains(testPlatforms, up) {
			c.Set(ColCMP, up)
		} else {
			c.Bad(ColCMP, CodeBadValue, fmt.Sprintf("cmp must be one of %s", strings.Join(testPlatforms, ", ")))
		}
	}
	c.Require(ColEUICCAgreementID)
	c.Require(ColLocaleID)
}
