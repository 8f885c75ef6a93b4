// Command gen writes the sample manifests in samples/. Run it through
// `go generate ./samples` (or `make samples`), which passes -dir .
// from samples/; -dir is required so that a stray `go run` elsewhere
// cannot scatter sample files.
//
// The valid samples use the header spellings and file conventions found in
// real exports (aliases like "SIM Number", a semicolon-separated file with
// a BOM, CRLF line ends), so they exercise the reader as well as the
// validator. The broken samples hold one deliberate mistake per row,
// explained in their note column.
package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gocarina/gocsv"

	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
)

func main() {
	dir := flag.String("dir", "", "directory to write the samples into (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -dir DIR")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := generate(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// Device numbers: each file draws from its own block so that no two
// samples share an identifier (a person may well concatenate them).
const (
	perProviderRows = 10
	blockSingle     = 1   // iotconnect.*, asavie.*, thingspace.*: 1-10
	blockMixed      = 101 // mixed.*: 101-130
	blockSpares     = 201 // mixed.xlsx sheet Spares: 201-205
	blockBroken     = 301 // broken*.*
)

func generate(dir string) error {
	steps := []struct {
		name  string
		write func(path string) error
	}{
		{"iotconnect.csv", writeIoTConnectCSV},
		{"asavie.csv", writeAsavieCSV},
		{"thingspace.csv", writeThingSpaceCSV},
		{"mixed.csv", writeMixedCSV},
		{"iotconnect.xlsx", func(p string) error { return writeProviderXLSX(p, iotconnect.Name) }},
		{"asavie.xlsx", func(p string) error { return writeProviderXLSX(p, asavie.Name) }},
		{"thingspace.xlsx", func(p string) error { return writeProviderXLSX(p, thingspace.Name) }},
		{"mixed.xlsx", writeMixedXLSX},
		{"broken.csv", writeBrokenCSV},
		{"broken-missing-column.csv", writeBrokenMissingColumnCSV},
		{"broken.xlsx", writeBrokenXLSX},
	}
	for _, s := range steps {
		if err := s.write(filepath.Join(dir, s.name)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// Per-provider rows, with the header spellings of each provider's own
// exports rather than simbulk's canonical names.

type iotconnectRow struct {
	EID              string `csv:"EID"`
	IMEI             string `csv:"IMEI"`
	CMP              string `csv:"CMP"`
	DomainID         string `csv:"Domain ID"`
	EUICCAgreementID string `csv:"eUICC Agreement ID"`
	LocaleID         string `csv:"Locale ID"`
}

type asavieRow struct {
	CLI          string `csv:"CLI"`
	ICCID        string `csv:"SIM Number"`
	Account      string `csv:"Account"`
	Description  string `csv:"Description"`
	InventoryRef string `csv:"Inventory Ref"`
	Tariff       string `csv:"Tariff"`
	Bundle       string `csv:"Bundle"`
	Operator     string `csv:"Operator"`
}

type thingspaceRow struct {
	EID          string `csv:"EID"`
	ICCID        string `csv:"ICCID"`
	IMEI         string `csv:"IMEI"`
	AccountName  string `csv:"Account Name"`
	ServicePlan  string `csv:"Service Plan"`
	CarrierName  string `csv:"Carrier Name"`
	MDNZipCode   string `csv:"MDN Zip Code"`
	FirstName    string `csv:"First Name"`
	LastName     string `csv:"Last Name"`
	AddressLine1 string `csv:"Address Line 1"`
	City         string `csv:"City"`
	State        string `csv:"State"`
	Zip          string `csv:"Zip"`
	Country      string `csv:"Country"`
}

func devices(provider string, first, count int) []samples.Device {
	ds := make([]samples.Device, count)
	for i := range ds {
		ds[i] = samples.NewDevice(provider, first+i)
	}
	return ds
}

func iotconnectRows() []iotconnectRow {
	var rows []iotconnectRow
	for _, d := range devices(iotconnect.Name, blockSingle, perProviderRows) {
		rows = append(rows, iotconnectRow{d.EID, d.IMEI, d.CMP, d.DomainID, d.EUICCAgreementID, d.LocaleID})
	}
	return rows
}

func asavieRows() []asavieRow {
	var rows []asavieRow
	for _, d := range devices(asavie.Name, blockSingle, perProviderRows) {
		rows = append(rows, asavieRow{d.CLI, d.ICCID, d.Account, d.Description, d.InventoryRef, d.Tariff, d.Bundle, d.Operator})
	}
	return rows
}

func thingspaceRows() []thingspaceRow {
	var rows []thingspaceRow
	for _, d := range devices(thingspace.Name, blockSingle, perProviderRows) {
		rows = append(rows, thingspaceRow{d.EID, d.ICCID, d.IMEI, d.AccountName, d.ServicePlan, d.CarrierName,
			d.MDNZipCode, d.FirstName, d.LastName, d.AddressLine1, d.City, d.State, d.Zip, d.Country})
	}
	return rows
}

// mixedDevices interleaves the three providers, as a logistics team's
// combined sheet would.
func mixedDevices(first, count int) []samples.Device {
	ds := make([]samples.Device, count)
	for i := range ds {
		ds[i] = samples.NewDevice(samples.Providers[i%len(samples.Providers)], first+i)
	}
	return ds
}

// csvFormat is how a CSV sample is laid out on disk.
type csvFormat struct {
	comma rune
	crlf  bool
	bom   bool // UTF-8 byte order mark, as Excel's "CSV UTF-8" writes
}

// writeStructsCSV writes rows (a slice of structs with csv tags) with a
// writer configured for this call only: gocsv's package-level settings
// would be shared by every caller.
func writeStructsCSV(path string, rows any, f csvFormat) error {
	var buf bytes.Buffer
	if f.bom {
		buf.WriteString("\ufeff")
	}
	w := csv.NewWriter(&buf)
	w.Comma = f.comma
	w.UseCRLF = f.crlf
	if err := gocsv.MarshalCSV(rows, gocsv.NewSafeCSVWriter(w)); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeIoTConnectCSV(path string) error {
	return writeStructsCSV(path, iotconnectRows(), csvFormat{comma: ','})
}

// asavie.csv is what European Excel saves as "CSV UTF-8": semicolons, a
// BOM and CRLF.
func writeAsavieCSV(path string) error {
	return writeStructsCSV(path, asavieRows(), csvFormat{comma: ';', crlf: true, bom: true})
}

func writeThingSpaceCSV(path string) error {
	return writeStructsCSV(path, thingspaceRows(), csvFormat{comma: ',', crlf: true})
}

func writeMixedCSV(path string) error {
	return writeStructsCSV(path, mixedDevices(blockMixed, 3*perProviderRows), csvFormat{comma: ','})
}

// writeRecordsCSV writes raw records: the broken samples need what a
// struct cannot express (ragged rows, bytes that are not UTF-8).
func writeRecordsCSV(path string, records [][]string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(records); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
