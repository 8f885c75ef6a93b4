package main

import (
	"strconv"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
)

// brokenRow is one row of a broken sample: a valid device with one
// deliberate mistake, and a note saying what it is. The note column is
// not one simbulk knows, so it is carried along untouched, which shows
// that unknown columns are kept.
type brokenRow struct {
	note   string
	device samples.Device
	// edit makes the mistake in the mixed-manifest record; nil leaves the
	// row valid.
	edit func(rec []string) []string
}

// col is a column's position in samples.Columns.
func col(name string) int {
	for i, c := range samples.Columns {
		if c == name {
			return i
		}
	}
	panic("gen: no column " + name)
}

func set(name, value string) func([]string) []string {
	return func(rec []string) []string {
		rec[col(name)] = value
		return rec
	}
}

// brokenRows lists the rows of broken.csv in file order; row 2 is the
// first. cmd/simbulk's sample test checks each mistake is reported on its
// row with its code.
func brokenRows() []brokenRow {
	dev := func(p string, k int) samples.Device { return samples.NewDevice(p, blockBroken+k) }
	iot, asv, ts := iotconnect.Name, asavie.Name, thingspace.Name

	validASV := dev(asv, 1)
	eid := dev(iot, 6).EID
	iccid := dev(ts, 9).ICCID
	return []brokenRow{
		{"valid iotconnect row, for comparison", dev(iot, 0), nil},
		{"valid asavie row, for comparison", validASV, nil},
		{"valid thingspace row, for comparison", dev(ts, 2), nil},
		{"missing_value: the EID cell is empty", dev(iot, 3), set(ingest.ColEID, "")},
		{"bad_format: EID has 31 digits", dev(iot, 4), set(ingest.ColEID, dev(iot, 4).EID[:31])},
		{"bad_checksum: EID check digits mistyped", dev(iot, 5), set(ingest.ColEID, eid[:30]+flipDigits(eid[30:]))},
		{"excel_damage: ICCID in scientific notation", dev(asv, 7), set(ingest.ColICCID, "8.94430123456789E+19")},
		{"excel_damage: IMEI ends in .0", dev(ts, 8), set(ingest.ColIMEI, dev(ts, 8).IMEI+".0")},
		{"excel_damage: ICCID has only zeros after the 15th digit", dev(ts, 9), set(ingest.ColICCID, zeroTail(iccid))},
		{"duplicate: same CLI as row 3", dev(asv, 10), set(ingest.ColCLI, validASV.CLI)},
		{"unknown_provider: vodafone is not a provider simbulk knows", dev(asv, 11), set(ingest.ColProvider, "vodafone")},
		{"bad_encoding: description saved as Latin-1, not UTF-8", dev(asv, 12), set(ingest.ColDescription, "Caf\xe9 R\xfcdesheim tracker")},
		{"bad_value: IOTA_US is not an IoT Connect CMP", dev(iot, 13), set(ingest.ColCMP, "IOTA_US")},
		{"field_count: an extra field after the note", dev(asv, 14), nil}, // extra field added below
		{"bad_format: CLI in national format", dev(asv, 15), set(ingest.ColCLI, "07700 900315")},
		{"bad_checksum: ICCID check digit mistyped", dev(ts, 16), set(ingest.ColICCID, flipLast(dev(ts, 16).ICCID))},
		{"missing_value: account_name is empty", dev(ts, 17), set(ingest.ColAccountName, "")},
		{"bad_format: state must be a two-letter code", dev(ts, 18), set(ingest.ColState, "Texas")},
		{"missing_value: the provider cell is empty", dev(iot, 19), set(ingest.ColProvider, "")},
	}
}

// brokenFieldCountNote marks the row of brokenRows that gets an extra
// field: a struct or a clean header cannot express it.
const brokenFieldCountNote = "field_count: an extra field after the note"

func writeBrokenCSV(path string) error {
	records := [][]string{append(append([]string{}, samples.Columns...), "note")}
	for _, r := range brokenRows() {
		rec := r.device.Record()
		if r.edit != nil {
			rec = r.edit(rec)
		}
		rec = append(rec, r.note)
		if r.note == brokenFieldCountNote {
			rec = append(rec, "stray")
		}
		records = append(records, rec)
	}
	return writeRecordsCSV(path, records)
}

// broken-missing-column.csv is a ThingSpace export whose EID column was
// deleted. Validated with --provider thingspace it reports missing_column
// for the header (row 1), and every row says why it cannot be sent. A
// missing column cannot share a file with the other mistakes: it affects
// every row.
func writeBrokenMissingColumnCSV(path string) error {
	cols := []string{"ICCID", "IMEI", "Account Name", "Service Plan"}
	records := [][]string{cols}
	for k := range 3 {
		d := samples.NewDevice(thingspace.Name, blockBroken+50+k)
		records = append(records, []string{d.ICCID, d.IMEI, d.AccountName, d.ServicePlan})
	}
	return writeRecordsCSV(path, records)
}

// broken.xlsx holds identifiers in numeric cells, as a spreadsheet makes
// of them when a column is not formatted as Text. EIDs and ICCIDs have
// lost digits for good (errors); a 15-digit IMEI or a 12-digit MSISDN is
// still exact, so those rows get a warning and stay valid.
func writeBrokenXLSX(path string) error {
	dev := func(p string, k int) samples.Device { return samples.NewDevice(p, blockBroken+100+k) }
	iot, asv, ts := iotconnect.Name, asavie.Name, thingspace.Name
	header := append(append([]string{}, samples.Columns...), "note")
	row := func(d samples.Device, note string, column string, number any) []any {
		cells := textCells(append(d.Record(), note))
		if column != "" {
			cells[col(column)] = number
		}
		return cells
	}
	asavieMSISDN := dev(asv, 4)
	asavieMSISDN.CLI = "+447700900404"
	s := sheet{name: "Devices", header: header, rows: [][]any{
		row(dev(iot, 0), "valid row with identifiers stored as text, for comparison", "", nil),
		row(dev(iot, 1), "excel_damage: EID stored as a number", ingest.ColEID, mustFloat(dev(iot, 1).EID)),
		row(dev(asv, 2), "excel_damage: ICCID stored as a number", ingest.ColICCID, mustFloat(dev(asv, 2).ICCID)),
		row(dev(ts, 3), "excel_damage warning: IMEI stored as a number, still exact", ingest.ColIMEI, mustInt(dev(ts, 3).IMEI)),
		row(asavieMSISDN, "excel_damage warning: MSISDN stored as a number, still exact", ingest.ColCLI, 447700900404),
		row(dev(ts, 5), "excel_damage: ICCID stored as a number", ingest.ColICCID, mustFloat(dev(ts, 5).ICCID)),
	}}
	return writeXLSX(path, []sheet{s})
}

// flipDigits changes two check digits so they are certainly wrong.
func flipDigits(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = '0' + (b[i]-'0'+5)%10
	}
	return string(b)
}

// flipLast changes the last digit, the Luhn check digit.
func flipLast(s string) string {
	return s[:len(s)-1] + flipDigits(s[len(s)-1:])
}

// zeroTail keeps 15 significant digits and zeros the rest, as Excel does;
// the result must fail Luhn for simbulk to call it damage, so the 15th
// digit is nudged until it does.
func zeroTail(s string) string {
	out := s[:15] + "00000"[:len(s)-15]
	for ingest.LuhnValid(out) {
		out = out[:14] + flipDigits(out[14:15]) + out[15:]
	}
	return out
}

func mustFloat(digits string) float64 {
	f, err := strconv.ParseFloat(digits, 64)
	if err != nil {
		panic(err)
	}
	return f
}

func mustInt(digits string) int {
	n, err := strconv.Atoi(digits)
	if err != nil {
		panic(err)
	}
	return n
}
