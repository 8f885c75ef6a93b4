package ingest

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validator checks manifest rows against the identifier rules and the rules
// of each row's provider, and finds identifiers used twice. It holds the
// duplicate index of one manifest, so use one Validator per manifest; it is
// not safe for concurrent use.
type Validator struct {
	h Header
	// provider is opts.Provider, normalised; "" means each row says.
	provider      string
	providerRaw   string // as given, for messages
	providerKnown bool
	rules         map[string]ProviderRules
	defaults      map[string]map[string]string // provider -> canonical column -> value

	setups map[string]*providerSetup // known provider -> what Check needs, worked out once

	iProvider, iEID, iICCID, iCLI, iIMEI int
	fieldCols                            []fieldCol   // provider fields present in the header, in file order
	colNames                             []string     // position -> canonical name, or the header as written
	fieldNames                           nameSet      // every field a row may have: fieldCols' and the defaults', in slot order
	noDefaults                           *fieldLayout // the fields of a row whose provider is unknown

	headersFound  string // for messages: the headers as written, the first few
	noProviderMsg string
	dups          *dupIndex
	uses          []dupUse // Check's scratch
	scratch       checkScratch
}

// checkScratch is where check works on a row; one goroutine's at a time.
type checkScratch struct {
	c  rowCheck
	fc FieldCheck
}

type fieldCol struct {
	name string
	idx  int
}

// providerSetup is what Check needs for each row of one provider; the
// Validator works it out once per known provider rather than per row.
type providerSetup struct {
	manifest                    Manifest      // the provider's rules
	rules                       ProviderRules // as rulesFor gives them
	needEID, needICCID, needCLI bool          // required identifiers
	fields                      *fieldLayout  // where its fields come from
}

// fieldLayout is where one provider's fields come from in the rows of one
// manifest: a column, a configured default, or both (the cell wins when
// it is not empty). It is worked out once per provider, and every Row
// points to it instead of carrying a map of its own.
type fieldLayout struct {
	names *nameSet    // the Validator's fieldNames: name -> slot
	slots []fieldSlot // by the names' order
}

// fieldSlot is one provider field of a fieldLayout.
type fieldSlot struct {
	name string
	col  int    // position in the record, -1 when the header lacks it
	def  string // the configured default, "" for none
}

// slot returns the value of field slot i in a row with these cells.
func (l *fieldLayout) slot(values []string, i int) string {
	s := &l.slots[i]
	if s.col >= 0 && s.col < len(values) {
		val := values[s.col]
		if !plainEnds(val) {
			val = strings.TrimSpace(val)
		}
		if val != "" {
			return val
		}
	}
	return s.def
}

// get returns field col of a row with these cells, "" when the layout
// has no such field.
func (l *fieldLayout) get(values []string, col string) string {
	if i := l.names.index(col); i >= 0 {
		return l.slot(values, i)
	}
	return ""
}

func isIdentifier(col string) bool {
	switch col {
	case ColEID, ColICCID, ColCLI, ColIMEI:
		return true
	}
	return false
}

// label is how messages name a column.
func label(col string) string {
	switch col {
	case ColEID:
		return "EID"
	case ColICCID:
		return "ICCID"
	case ColCLI:
		return "CLI"
	case ColIMEI:
		return "IMEI"
	}
	return col
}

// normaliseProvider folds a provider name as written (in any case, with
// spaces, underscores or hyphens) to its registered spelling.
func normaliseProvider(s string) string {
	if _, ok := manifests[s]; ok {
		return s
	}
	return NormaliseHeader(s)
}

func knownProvider(p string) bool {
	_, ok := manifests[p]
	return ok
}

// NewValidator prepares the checks for a manifest with header h. The
// problems it returns concern the manifest as a whole (Row 1): a provider
// column that is needed but absent, a --provider simbulk does not know, or a
// column the provider needs that is neither in the header nor covered by a
// default. The rows of such a manifest are still checked, and each one also
// gets the missing value, so reports say per row why it was not sent.
func NewValidator(h Header, opts ValidateOptions) (*Validator, []Problem) {
	v := &Validator{
		h:         h,
		rules:     make(map[string]ProviderRules, len(opts.Rules)),
		defaults:  make(map[string]map[string]string, len(opts.Defaults)),
		iProvider: h.Index(ColProvider),
		iEID:      h.Index(ColEID),
		iICCID:    h.Index(ColICCID),
		iCLI:      h.Index(ColCLI),
		iIMEI:     h.Index(ColIMEI),
		colNames:  slices.Clone(h.Names),
		dups:      newDupIndex(),
	}
	for canon, i := range h.index {
		if i < len(v.colNames) {
			v.colNames[i] = canon
		}
		if canon != ColProvider && !isIdentifier(canon) {
			v.fieldCols = append(v.fieldCols, fieldCol{canon, i})
		}
	}
	slices.SortFunc(v.fieldCols, func(a, b fieldCol) int { return a.idx - b.idx })

	// Capped: these messages are logged and repeated on every row, and a
	// header may have a thousand columns.
	v.headersFound = listNames(h.Names)
	for p, r := range opts.Rules {
		v.rules[normaliseProvider(strings.TrimSpace(p))] = r
	}
	for p, defs := range opts.Defaults {
		m := make(map[string]string, len(defs))
		for k, val := range defs {
			col, ok := Aliases[NormaliseHeader(k)]
			if !ok {
				col = k // a field simbulk has no column for; still passed on
			}
			val = strings.TrimSpace(val)
			if val == "" || col == ColProvider || isIdentifier(col) {
				continue
			}
			m[col] = val
		}
		v.defaults[normaliseProvider(strings.TrimSpace(p))] = m
	}
	names := make([]string, 0, len(v.fieldCols))
	for _, fc := range v.fieldCols {
		names = append(names, fc.name)
	}
	for _, defs := range v.defaults {
		for name := range defs {
			names = append(names, name)
		}
	}
	v.fieldNames = newNameSet(names)
	v.noDefaults = v.newFieldLayout(nil)
	v.setups = make(map[string]*providerSetup, len(providerNames))
	for _, p := range providerNames {
		v.setups[p] = v.newProviderSetup(p)
	}

	var problems []Problem
	if opts.Provider != "" {
		v.provider = normaliseProvider(strings.TrimSpace(opts.Provider))
		v.providerRaw = opts.Provider
		v.providerKnown = knownProvider(v.provider)
		if !v.providerKnown {
			problems = append(problems, Problem{Row: 1, Column: ColProvider, Value: opts.Provider,
				Code: CodeUnknownProvider, Severity: SeverityError, Message: unknownProviderMessage(opts.Provider)})
		}
	}
	switch {
	case v.provider == "" && v.iProvider < 0:
		v.noProviderMsg = fmt.Sprintf("the manifest has no provider column and no --provider was given; add a provider column (%s) or pass --provider (headers found: %s)",
			strings.Join(providerNames, ", "), v.headersFound)
		problems = append(problems, Problem{Row: 1, Column: ColProvider, Code: CodeMissingColumn,
			Severity: SeverityError, Message: v.noProviderMsg})
	default:
		v.noProviderMsg = fmt.Sprintf("provider is empty; write one of %s (or pass --provider)", strings.Join(providerNames, ", "))
	}
	if v.providerKnown {
		for _, col := range v.columnsNeeded(v.provider) {
			if h.Has(col) || v.defaults[v.provider][col] != "" {
				continue
			}
			msg := fmt.Sprintf("%s needs %s column", v.provider, article(label(col)))
			if !isIdentifier(col) {
				msg += fmt.Sprintf(" (or a default %s for %s in the config)", col, v.provider)
			}
			problems = append(problems, Problem{Row: 1, Column: col, Code: CodeMissingColumn,
				Severity: SeverityError, Message: msg + "; headers found: " + v.headersFound})
		}
	}
	return v, problems
}

func (v *Validator) newProviderSetup(p string) *providerSetup {
	m := manifests[p]
	required := m.Required
	s := &providerSetup{
		manifest:  m,
		rules:     v.rulesFor(p),
		needEID:   slices.Contains(required, ColEID),
		needICCID: slices.Contains(required, ColICCID),
		needCLI:   slices.Contains(required, ColCLI),
		fields:    v.newFieldLayout(v.defaults[p]),
	}
	return s
}

// newFieldLayout lays out the fields of a provider with these defaults:
// one slot per name in fieldNames, each with its column and default.
func (v *Validator) newFieldLayout(defaults map[string]string) *fieldLayout {
	l := &fieldLayout{names: &v.fieldNames, slots: make([]fieldSlot, len(v.fieldNames.names))}
	for i, name := range v.fieldNames.names {
		l.slots[i] = fieldSlot{name: name, col: -1, def: defaults[name]}
	}
	for _, fc := range v.fieldCols {
		l.slots[v.fieldNames.index(fc.name)].col = fc.idx
	}
	return l
}

// setupFor returns the setup of a row's provider. Rows whose provider is
// unknown get no required identifiers and no defaults.
func (v *Validator) setupFor(prov string, known bool) *providerSetup {
	if known {
		return v.setups[prov]
	}
	return &providerSetup{rules: v.rulesFor(prov), fields: v.noDefaults}
}

// expectRows tells the Validator how many rows the manifest probably has
// in all, after the first rows have been through the duplicate index, so
// that it can size the index once, from their identifiers per row, instead
// of growing it step by step. A wrong guess costs memory or a few small
// growth steps, never a result.
func (v *Validator) expectRows(rowsSoFar, total int) {
	if rowsSoFar == 0 || total <= rowsSoFar || v.dups.n == 0 {
		return
	}
	n := v.dups.held()
	for k := range n {
		// The first rows are a small sample: an eighth more.
		n[k] = int(float64(n[k]) / float64(rowsSoFar) * float64(total) * 1.125)
	}
	v.dups.reserve(n)
}

// columnsNeeded lists the columns every row of provider p needs, as far
// as the header and defaults can tell (a field group counts when a default
// starts it).
func (v *Validator) columnsNeeded(p string) []string {
	m := manifests[p]
	cols := m.Required
	for _, g := range m.Groups {
		for _, col := range g.Any {
			if v.defaults[p][col] != "" {
				cols = append(slices.Clip(cols), g.Required...)
				break
			}
		}
	}
	return cols
}

func unknownProviderMessage(p string) string {
	return fmt.Sprintf("unknown provider %q; simbulk knows %s", p, strings.Join(providerNames, ", "))
}

// rulesFor returns provider p's strictness, checksum errors by default.
// "warn", as the config spells it, means a warning too.
func (v *Validator) rulesFor(p string) ProviderRules {
	r := v.rules[p]
	if r.Checksum == SeverityWarning || r.Checksum == "warn" {
		r.Checksum = SeverityWarning
	} else {
		r.Checksum = SeverityError
	}
	return r
}

// HasErrors reports whether any problem makes its row invalid. Anything not
// marked a warning counts as an error.
func HasErrors(problems []Problem) bool {
	for _, p := range problems {
		if p.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// Check validates one record and returns the row as the pipeline should
// send it, with every problem found in it (not just the first). The row is
// invalid when HasErrors(problems).
func (v *Validator) Check(rec Record) (Row, []Problem) {
	v.uses = v.uses[:0]
	var row Row
	problems := v.check(&rec, &row, &v.uses, &v.scratch)
	v.dups.resolve(v.uses)
	return row, addDuplicates(problems, v.uses)
}

// check is Check without the duplicate index: it fills row from rec and
// appends the row's identifiers to uses, for resolve and then
// addDuplicates. It changes nothing in v, so Scan may run it on two
// goroutines. Record and Row go by pointer: copied in and out of every
// call, they had cost a tenth of validating a narrow row.
//
// The rowCheck lives in s, which the caller reuses row after row: handed
// to a provider's Fields rule (an unknown function), it and its
// FieldCheck would otherwise be allocated for every row.
func (v *Validator) check(rec *Record, row *Row, uses *[]dupUse, s *checkScratch) []Problem {
	s.c = rowCheck{v: v, rec: rec, uses: uses, spoiled: s.c.spoiled[:0], last: s.c.last}
	c := &s.c
	*row = Row{Number: rec.Row, Values: rec.Values}
	c.readerProblems()

	fields := rec.FieldCount
	if fields == 0 {
		fields = len(rec.Values) // a Record built without FieldCount
	}
	if fields != len(v.h.Names) {
		c.add("", "", CodeFieldCount, SeverityError, fmt.Sprintf(
			"this row has %d fields but the header has %d; look for a missing or extra separator (a value containing the separator must be in quotes)",
			fields, len(v.h.Names)))
	}
	if rec.BadEncoding {
		c.badEncoding()
	}
	if !rec.noControls {
		c.controls() // after badEncoding: it replaces control characters with U+FFFD
	}

	prov, known := c.provider()
	row.Provider = prov
	setup := c.last.setup
	if !known || setup == nil || c.last.name != prov {
		setup = v.setupFor(prov, known)
	}
	row.EID = c.eid(prov, setup.rules, setup.needEID)
	row.ICCID = c.iccid(prov, setup.rules, setup.needICCID)
	row.CLI = c.cli(prov, setup.manifest.CLI, setup.needCLI)
	row.IMEI = c.imei(prov, setup.rules)

	row.fields = setup.fields
	if known && setup.manifest.Fields != nil {
		s.fc = FieldCheck{c: c, prov: prov, fields: setup.fields, lengths: v.fieldNames.lengths}
		setup.manifest.Fields(&s.fc)
		row.set, s.fc.set = s.fc.set, nil
	}
	return c.problems
}

// unreadRow is check for a row the reader could not read whole (a quote
// error): the reader's problems, and control characters made safe, since
// the row still goes to the reports.
func (v *Validator) unreadRow(rec *Record, err *RowError) (Row, []Problem) {
	c := rowCheck{v: v, rec: rec}
	c.readerProblems()
	c.problems = append(c.problems, err.Problem())
	c.controls()
	return Row{Number: rec.Row, Values: rec.Values}, c.problems
}

// addDuplicates puts a row's duplicate problems, from its resolved uses,
// among its other problems where the identifier was checked.
func addDuplicates(problems []Problem, uses []dupUse) []Problem {
	added := 0
	for _, u := range uses {
		if !u.dup {
			continue
		}
		k := dupKindNames[u.kind]
		p := Problem{Row: u.row, Column: k.col, Value: u.raw, Code: CodeDuplicate, Severity: SeverityError,
			Message: fmt.Sprintf("same %s as row %d; each %s may appear only once in a manifest", k.name, u.earlier, k.name)}
		problems = slices.Insert(problems, u.at+added, p)
		added++
	}
	return problems
}

// rowCheck collects the problems of one record.
type rowCheck struct {
	v        *Validator
	rec      *Record
	problems []Problem
	uses     *[]dupUse // identifiers for the duplicate index
	// spoiled are the provider columns whose cell already has an error
	// that makes checking its value pointless (a cell cut short, a control
	// character), so that it does not also get missing_value or bad_format.
	spoiled []string
	last    lastProvider // kept from row to row
}

// lastProvider is the provider of the last row with a known one, and the
// cell that named it: most manifests name the same provider row after
// row, and finding it from the cell took three map lookups.
type lastProvider struct {
	cell, name string
	setup      *providerSetup
}

func (c *rowCheck) spoil(col string) { c.spoiled = append(c.spoiled, col) }
func (c *rowCheck) isSpoiled(col string) bool {
	return len(c.spoiled) > 0 && slices.Contains(c.spoiled, col)
}

// readerProblems takes the problems the reader found in the row.
func (c *rowCheck) readerProblems() {
	for _, p := range c.rec.Problems {
		c.problems = append(c.problems, p)
		if _, canonical := c.v.h.index[p.Column]; canonical {
			c.spoil(p.Column)
		}
	}
}

// controls reports the control characters in the row's cells and replaces
// them with U+FFFD in the row's values, which go to the reports (and, in
// valid rows, to the provider). In a provider column one is an error, so
// the row is never sent; in a column only carried to the reports it is a
// warning. The test per cell is a byte loop that allocates nothing.
func (c *rowCheck) controls() {
	for i, val := range c.rec.Values {
		if mayHoldControl(val) {
			c.control(i, val)
		}
	}
}

func (c *rowCheck) control(i int, val string) {
	col, canonical := c.column(i)
	policy, lo, hi := textControls, 0, len(val)
	if canonical && isIdentifier(col) {
		// TAB, CR and LF around an identifier are trimmed like spaces;
		// inside it they are control characters like any other.
		policy = identControls
		trimmed := strings.TrimLeft(val, " \t\r\n")
		lo = len(val) - len(trimmed)
		hi = lo + len(strings.TrimRight(trimmed, " \t\r\n"))
	}
	found, ok := findControls(val, lo, hi, policy)
	if !ok {
		return
	}
	safe := replaceControls(val, policy)
	c.rec.Values[i] = safe
	where := fmt.Sprintf("row %d, column %s: control character %s", c.rec.Row, safeName(headerColumn(c.v.h, i)), found.describe())
	if !canonical {
		c.add(col, safe, CodeControlChar, SeverityWarning, where+
			"; this column only goes to the reports, which show each one as U+FFFD (\uFFFD). Remove it from the cell to keep the text as written")
		return
	}
	c.spoil(col)
	c.add(col, safe, CodeControlChar, SeverityError, where+
		"; simbulk never sends control characters to a provider, so the row is not sent. Remove it from the cell (it is often left by a copy out of another program, or by a file that is not plain text)")
}

// column names the column at position i for a problem: the canonical name
// when i is where the header has it, else the header as written.
func (c *rowCheck) column(i int) (col string, canonical bool) {
	if i >= len(c.v.colNames) {
		return headerColumn(c.v.h, i), false
	}
	col = c.v.colNames[i]
	j, canonical := c.v.h.index[col]
	return col, canonical && j == i
}

// addDuplicates puts a row's duplicate problems

func (c *rowCheck) add(col, value, code string, sev Severity, msg string) {
	c.problems = append(c.problems, Problem{Row: c.rec.Row, Column: col, Value: value, Code: code, Message: msg, Severity: sev})
}

// cell returns the raw value at position i, trimmed, and whether an XLSX
// file stored it as a number.
func (c *rowCheck) cell(i int) (raw, val string, numeric bool) {
	if i < 0 || i >= len(c.rec.Values) {
		return "", "", false
	}
	raw, val = c.rec.Values[i], c.rec.Values[i]
	if !plainEnds(val) {
		val = strings.TrimSpace(val)
	}
	return raw, val, i < len(c.rec.Numeric) && c.rec.Numeric[i]
}

// plainEnds reports whether strings.TrimSpace would leave s as it is
// because it is empty or starts and ends with a printable ASCII character
// ('!' to DEL; the subtraction wraps everything else above the limit).
// Most cells are like that, and unlike TrimSpace the check is inlined.
func plainEnds(s string) bool {
	n := len(s)
	return n == 0 || (s[0]-'!' < utf8.RuneSelf-'!' && s[n-1]-'!' < utf8.RuneSelf-'!')
}

// badEncoding names the cells that hold replacement characters. They are
// errors in columns that are sent to a provider and warnings in extra
// columns, which only travel to the reports.
func (c *rowCheck) badEncoding() {
	const msg = "this cell has bytes that are not valid text in the file's encoding (shown as \uFFFD); save the manifest as UTF-8 and export it again"
	found := false
	for i, val := range c.rec.Values {
		if !strings.ContainsRune(val, utf8.RuneError) {
			continue
		}
		found = true
		col, sev := "", SeverityWarning
		if i < len(c.v.colNames) {
			col = c.v.colNames[i]
			if j, canonical := c.v.h.index[col]; canonical && j == i {
				sev = SeverityError
			}
		}
		c.add(col, val, CodeBadEncoding, sev, msg)
	}
	if !found {
		c.add("", "", CodeBadEncoding, SeverityError, "this row has bytes that are not valid text in the file's encoding; save the manifest as UTF-8 and export it again")
	}
}

// provider decides the row's provider: --provider, or the provider cell.
func (c *rowCheck) provider() (name string, known bool) {
	raw, val, _ := c.cell(c.v.iProvider)
	if c.v.provider != "" {
		if !c.v.providerKnown {
			c.add(ColProvider, c.v.providerRaw, CodeUnknownProvider, SeverityError, unknownProviderMessage(c.v.providerRaw))
		} else if val != "" && normaliseProvider(val) != c.v.provider {
			c.add(ColProvider, raw, CodeBadValue, SeverityError, fmt.Sprintf(
				"this row is for provider %q but --provider %s was given; leave the cell empty or make them agree", val, c.v.provider))
		}
		if c.v.providerKnown && c.last.setup == nil {
			c.last = lastProvider{name: c.v.provider, setup: c.v.setups[c.v.provider]}
		}
		return c.v.provider, c.v.providerKnown
	}
	if val == "" {
		c.add(ColProvider, raw, CodeMissingValue, SeverityError, c.v.noProviderMsg)
		return "", false
	}
	if c.last.setup != nil && val == c.last.cell {
		return c.last.name, true
	}
	p := normaliseProvider(val)
	if !knownProvider(p) {
		c.add(ColProvider, raw, CodeUnknownProvider, SeverityError, unknownProviderMessage(val))
		return val, false
	}
	c.last = lastProvider{cell: val, name: p, setup: c.v.setups[p]}
	return p, true
}

// missing reports a required value that the row does not have; need says
// when provider prov needs it ("for every row").
func (c *rowCheck) missing(prov, col, raw, need string) {
	var msg string
	switch {
	case !c.v.h.Has(col) && isIdentifier(col):
		msg = fmt.Sprintf("%s needs %s %s, but the manifest has no %s column (headers found: %s)",
			prov, article(label(col)), need, label(col), c.v.headersFound)
	case !c.v.h.Has(col):
		msg = fmt.Sprintf("%s needs a %s %s, but the manifest has no %s column and the config sets no default %s for %s (headers found: %s)",
			prov, col, need, col, col, prov, c.v.headersFound)
	case isIdentifier(col):
		msg = fmt.Sprintf("%s is empty; %s needs %s %s", label(col), prov, article(label(col)), need)
	default:
		msg = fmt.Sprintf("%s is empty; %s needs it %s (or set a default %s for %s in the config)", col, prov, need, col, prov)
	}
	c.add(col, raw, CodeMissingValue, SeverityError, msg)
}

// needEveryRow is when a Required column is needed, for messages.
const needEveryRow = "for every row"

// ident reads an identifier cell: removes text markers a spreadsheet user
// may have added and reports spreadsheet damage. ok is false when there is
// nothing more to check: the cell is empty or too damaged to read.
func (c *rowCheck) ident(prov, col string, i int, lossy, required bool) (raw, val string, ok bool) {
	raw, val, numeric, ok := c.identCell(prov, col, i, required)
	if !ok {
		return raw, val, false
	}
	return raw, val, c.excel(col, raw, val, numeric, lossy)
}

// identCell is the first half of ident: the cell, unwrapped, and whether
// a spreadsheet stored it as a number. ok is false when the cell is empty
// or already reported.
func (c *rowCheck) identCell(prov, col string, i int, required bool) (raw, val string, numeric, ok bool) {
	raw, val, numeric = c.cell(i)
	if c.isSpoiled(col) {
		return raw, "", numeric, false
	}
	if val == "" {
		if required {
			c.missing(prov, col, raw, needEveryRow)
		}
		return raw, "", numeric, false
	}
	return raw, unwrapText(val), numeric, true
}

// excel is the second half of ident: it reports spreadsheet damage and
// says whether the value is still worth checking. A text cell of digits
// alone has none, so the EID and ICCID checks read such cells first and
// come here only when they are not that.
func (c *rowCheck) excel(col, raw, val string, numeric, lossy bool) bool {
	if msg, sev, found := excelDamage(label(col), val, numeric, lossy); found {
		c.add(col, raw, CodeExcelDamage, sev, msg)
		return sev != SeverityError
	}
	return true
}

// idProblem records an identifier problem; checksum failures (and the
// Excel damage detected through them) take the provider's checksum
// severity. It reports whether the value is unusable.
func (c *rowCheck) idProblem(col, raw string, p idProblem, rules ProviderRules) (unusable bool) {
	sev := SeverityError
	if p.code == CodeBadChecksum || p.code == CodeExcelDamage {
		sev = rules.Checksum
	}
	c.add(col, raw, p.code, sev, p.msg)
	return sev == SeverityError
}

// dup queues a usable identifier for the duplicate index, which reports a
// repeat at this point among the row's problems.
func (c *rowCheck) dup(kind dupKind, key, raw string) {
	c.dupKey(kind, c.v.dups.key(kind, key), raw)
}

// dupKey is dup of an identifier already packed.
func (c *rowCheck) dupKey(kind dupKind, k dupKey, raw string) {
	*c.uses = append(*c.uses, dupUse{key: k, raw: raw, row: c.rec.Row, at: len(c.problems), kind: kind})
}

func (c *rowCheck) eid(prov string, rules ProviderRules, required bool) string {
	raw, val, numeric, ok := c.identCell(prov, ColEID, c.v.iEID, required)
	if !ok {
		return val
	}
	// The common case in one pass: the digits of a text cell read as
	// numbers give the check digits' test and the duplicate index's key,
	// and mean there is no spreadsheet damage to look for.
	if hi, lo, ok := eidNumbers(val); ok && !numeric && eidMod97(hi, lo) == 1 {
		c.dupKey(dupEID, c.v.dups.eidKey(hi, lo), raw)
		return val
	}
	if !c.excel(ColEID, raw, val, numeric, true) {
		return val
	}
	if p := checkEID(val); !p.ok() && c.idProblem(ColEID, raw, p, rules) {
		return val
	}
	c.dup(dupEID, val, raw)
	return val
}

func (c *rowCheck) iccid(prov string, rules ProviderRules, required bool) string {
	raw, val, numeric, ok := c.identCell(prov, ColICCID, c.v.iICCID, required)
	if !ok {
		return val
	}
	// The common case in one pass, as for the EID: a complete ICCID
	// that passes Luhn is its own canonical form under either rule.
	if k, ok := iccidNumber(val); ok && !numeric {
		c.dupKey(dupICCID, c.v.dups.shortKey(dupICCID, k), raw)
		return val
	}
	if !c.excel(ColICCID, raw, val, numeric, true) {
		return val
	}
	canon, p := checkICCID(val, rules.AllowICCIDWithoutCheckDigit)
	if !p.ok() {
		if c.idProblem(ColICCID, raw, p, rules) {
			return val
		}
		canon = val // a checksum warning: the value goes out as written
	}
	c.dup(dupICCID, canon, raw)
	return val
}

func (c *rowCheck) imei(prov string, rules ProviderRules) string {
	raw, val, ok := c.ident(prov, ColIMEI, c.v.iIMEI, false, false)
	if !ok {
		return val
	}
	if p := checkIMEI(val); !p.ok() {
		c.idProblem(ColIMEI, raw, p, rules)
	}
	return val
}

// cli checks the CLI as an MSISDN or an IMSI. The header decides which when
// it says (an MSISDN or IMSI column); under a plain CLI header the value
// does: a leading + or a bracketed country code is an MSISDN, 14-16 bare
// digits an IMSI, fewer an MSISDN. An MSISDN goes bracketed,
// "(+44)7700900123", to a provider whose CLIForm says so and as bare
// digits to the others.
func (c *rowCheck) cli(prov string, form CLIForm, required bool) string {
	raw, val, ok := c.ident(prov, ColCLI, c.v.iCLI, false, required)
	if !ok {
		return val
	}
	imsiLo, imsiHi := form.imsiRange()
	kind := c.v.h.CLIKind
	if kind == "" {
		switch {
		case val[0] == '+' || val[0] == '(':
			kind = "msisdn"
		case allDigits(val) && len(val) > imsiHi:
			c.add(ColCLI, raw, CodeBadFormat, SeverityError, fmt.Sprintf(
				"CLI must be an MSISDN (at most %d digits) or an IMSI (%d to %d digits); this one has %d digits",
				msisdnMax, imsiLo, imsiHi, len(val)))
			return val
		case allDigits(val) && len(val) >= bareIMSIMin:
			kind = "imsi"
		default:
			kind = "msisdn"
		}
	}
	if kind == "imsi" {
		if p := checkIMSI(val, imsiLo, imsiHi); !p.ok() {
			c.add(ColCLI, raw, p.code, SeverityError, p.msg)
			return val
		}
		c.dup(dupIMSI, val, raw)
		return val
	}
	m, p := parseMSISDN(val, form.Bracketed)
	if !p.ok() {
		c.add(ColCLI, raw, p.code, SeverityError, p.msg)
		return val
	}
	c.dup(dupMSISDN, m.digits, raw)
	if form.Bracketed {
		return m.bracketed()
	}
	return m.digits
}

// fieldRaw returns what a problem with field col should show as its value:
// the cell as written, or the default it came from.
func (c *rowCheck) fieldRaw(col string, fc *FieldCheck) string {
	if raw, val, _ := c.cell(c.v.h.Index(col)); val != "" {
		return raw
	}
	return fc.Get(col)
}

// require reports a required field that is empty (val is its value);
// otherwise it returns the field's value to check further.
func (c *rowCheck) require(prov, col, val, need string) (string, bool) {
	if c.isSpoiled(col) {
		return "", false
	}
	if val != "" {
		return val, true
	}
	raw, _, _ := c.cell(c.v.h.Index(col))
	c.missing(prov, col, raw, need)
	return "", false
}

// article puts "a" or "an" before a column label as it is read aloud:
// "an EID", "an ICCID", "an IMEI", "a CLI".
func article(label string) string {
	if label == "" {
		return label
	}
	switch label[0] {
	case 'A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u':
		return "an " + label
	}
	return "a " + label
}

// nameSet tells whether a string is one of a few names, and which,
// without hashing it: a probe table keyed by its length and end bytes,
// each hit confirmed by comparison. A provider's Fields rule asks for a
// dozen fields per row that most manifests lack, and hashing each name for
// a map lookup was a tenth of a narrow manifest's validation.
type nameSet struct {
	names []string
	slots [nameSlots]uint8 // 1 + index into names; 0 is empty
	all   bool             // too many names for slots: has says yes to all
	many  map[string]int   // when all: the index of each name
	// lengths has bit len(name)&63 set for each name (all bits when all).
	lengths uint64
}

const nameSlots = 256

func newNameSet(names []string) nameSet {
	var s nameSet
	for _, n := range names {
		if s.index(n) >= 0 {
			continue
		}
		if len(s.names) == nameSlots/2 { // kept at most half full
			return manyNames(names)
		}
		s.names = append(s.names, n)
		s.lengths |= 1 << (len(n) & 63)
		i := nameHome(n)
		for s.slots[i] != 0 {
			i = (i + 1) % nameSlots
		}
		s.slots[i] = uint8(len(s.names))
	}
	return s
}

// manyNames is the nameSet of more names than its table holds: a map.
func manyNames(names []string) nameSet {
	s := nameSet{all: true, many: make(map[string]int, len(names)), lengths: ^uint64(0)}
	for _, n := range names {
		if _, ok := s.many[n]; !ok {
			s.many[n] = len(s.names)
			s.names = append(s.names, n)
		}
	}
	return s
}

func nameHome(n string) int {
	if n == "" {
		return 0
	}
	return int((uint(len(n))*37 + uint(n[0])*7 + uint(n[len(n)-1])) % nameSlots)
}

// has reports whether n is one of the names (always, when there were too
// many to hold).
func (s *nameSet) has(n string) bool {
	return s.all || s.index(n) >= 0
}

// index returns n's position in names, or -1.
func (s *nameSet) index(n string) int {
	if s.all {
		if i, ok := s.many[n]; ok {
			return i
		}
		return -1
	}
	for i := nameHome(n); s.slots[i] != 0; i = (i + 1) % nameSlots {
		if j := int(s.slots[i]) - 1; s.names[j] == n {
			return j
		}
	}
	return -1
}
