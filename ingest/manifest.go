package ingest

import "slices"

// Manifest is what one provider asks of its manifest rows: the columns
// every row needs, how a CLI is written for it, and the rules of its own
// fields. The Validator's machinery is the same for every provider; a
// provider's Manifest is the only part that differs.
//
// This package knows no provider of its own: each provider package holds
// its rules and providers.Register installs them through RegisterManifest,
// so a program or test that validates manifests imports providers/all (or
// registers a Manifest itself) first.
type Manifest struct {
	// Required are the columns every row needs. Identifiers (eid, iccid,
	// cli) must be in the row; other fields may come from config defaults.
	Required []string
	// Groups are all-or-nothing field sets: when a config default starts
	// one (gives any of Any), the manifest needs its Required columns too.
	Groups []FieldGroup
	// CLI is how the provider takes a CLI.
	CLI CLIForm
	// Fields checks (and may normalise) one row's provider fields; nil
	// means none beyond Required.
	Fields func(c *FieldCheck)
}

// FieldGroup is an all-or-nothing set of provider fields (a postal
// address: a street without a city is no address).
type FieldGroup struct {
	Any, Required []string
}

// CLIForm is how a provider takes a CLI: the IMSI lengths it accepts (zero:
// 6 to 15 digits) and whether an MSISDN goes bracketed, "(+44)7700900123",
// rather than as bare digits. A bracketed MSISDN needs its country code
// told apart from the national number, so such a provider's MSISDNs must
// start with a known country calling code.
type CLIForm struct {
	IMSIMin, IMSIMax int
	Bracketed        bool
}

func (f CLIForm) imsiRange() (int, int) {
	if f.IMSIMin == 0 && f.IMSIMax == 0 {
		return imsiMin, imsiMax
	}
	return f.IMSIMin, f.IMSIMax
}

// manifests are the rules of every registered provider, by name, and
// providerNames their names in the order of registration, for messages
// that list them.
var (
	manifests     = map[string]Manifest{}
	providerNames []string
)

// RegisterManifest makes provider name known to validation with rules m,
// replacing its rules if it is known already; a new name goes at the end
// of the providers that messages list. Call it before validating, not
// during (providers.Register does, at start-up).
func RegisterManifest(name string, m Manifest) {
	if _, ok := manifests[name]; !ok {
		providerNames = append(slices.Clip(providerNames), name)
	}
	manifests[name] = m
}

// UnregisterManifest forgets provider name (for tests that register a
// provider of their own).
func UnregisterManifest(name string) {
	delete(manifests, name)
	providerNames = slices.DeleteFunc(slices.Clone(providerNames), func(p string) bool { return p == name })
}

// FieldCheck is one row's provider fields as a Manifest's Fields rule sees
// them: it reads and normalises values and reports what is wrong, at the
// cell as written (or the default the value came from).
type FieldCheck struct {
	c      *rowCheck
	prov   string
	fields *fieldLayout
	set    []fieldValue // what Set changed, for the Row
	// lengths has a bit for the length of each field the row may have
	// (see nameSet.lengths), the set ones included: a field of no such
	// length is empty.
	lengths uint64
}

// Provider is the row's provider.
func (fc *FieldCheck) Provider() string { return fc.prov }

// Get returns field col ("" when the row has none).
func (fc *FieldCheck) Get(col string) string {
	// A rule asks for every field it knows, and most rows have few of
	// them: the answer for a field the manifest lacks is settled here, in
	// the rule's own code, where this test is inlined.
	if fc.lengths&(1<<(len(col)&63)) == 0 {
		return ""
	}
	return fc.get(col)
}

func (fc *FieldCheck) get(col string) string {
	for i := len(fc.set) - 1; i >= 0; i-- {
		if fc.set[i].name == col {
			return fc.set[i].value
		}
	}
	return fc.fields.get(fc.c.rec.Values, col)
}

// Set replaces field col's value (a normalised spelling).
func (fc *FieldCheck) Set(col, val string) {
	// A rule sets what it has just checked, mostly already spelled as it
	// wants (a state code in capitals): only a change costs the row
	// anything.
	if val != "" && val == fc.Get(col) {
		return
	}
	fc.set = append(fc.set, fieldValue{col, val})
	fc.lengths |= 1 << (len(col) & 63)
}

// Require reports field col missing when it is empty; otherwise it returns
// the value to check further. A cell already reported (cut short, a
// control character) is not reported again.
func (fc *FieldCheck) Require(col string) (string, bool) {
	return fc.c.require(fc.prov, col, fc.Get(col), needEveryRow)
}

// RequireWhen is Require for a field needed only in some rows; when says
// which ("when a primary place of use is given").
func (fc *FieldCheck) RequireWhen(col, when string) (string, bool) {
	return fc.c.require(fc.prov, col, fc.Get(col), when)
}

// Bad reports field col's value as an error with code (CodeBadValue,
// CodeBadFormat) and a message that says what is wanted.
func (fc *FieldCheck) Bad(col, code, msg string) {
	fc.c.add(col, fc.c.fieldRaw(col, fc), code, SeverityError, msg)
}
