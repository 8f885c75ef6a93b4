package asavie

import "github.com/simbulk/simbulk/ingest"

// Manifest is what Asavie asks of a manifest row: a SIM keyed by its CLI,
// under an account. The CLI is written as the SIMCard.CLI pattern wants it
// (the simulator's cliPattern): an MSISDN bracketed, "(+44)7700900123", or
// an IMSI of 14 to 16 digits.
func Manifest() ingest.Manifest {
	return ingest.Manifest{
		Required: []string{ingest.ColCLI, ingest.ColAccount},
		CLI:      ingest.CLIForm{IMSIMin: 14, IMSIMax: 16, Bracketed: true},
		Fields:   func(c *ingest.FieldCheck) { c.Require(ingest.ColAccount) },
	}
}
