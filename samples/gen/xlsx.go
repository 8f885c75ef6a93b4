package main

import (
	"fmt"
	"os"

	"github.com/xuri/excelize/v2"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
)

// sheet is one worksheet to write: a header row, then rows of cells. A
// string cell is written as text; any other value (float64, int) as the
// number a spreadsheet would have made of it.
type sheet struct {
	name   string
	header []string
	rows   [][]any
}

// identifierColumns get the "@" (text) number format, so that a person who
// opens the sample and types a new ICCID into the column keeps all its
// digits: the advice the README gives for real manifests.
var identifierColumns = map[string]bool{ingest.ColEID: true, ingest.ColICCID: true, ingest.ColCLI: true, ingest.ColIMEI: true}

func writeXLSX(path string, sheets []sheet) (err error) {
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	// Fixed document dates keep the generated file byte-identical across
	// runs.
	if err := f.SetDocProps(&excelize.DocProperties{
		Creator: "simbulk samples", Created: "2026-01-01T00:00:00Z", Modified: "2026-01-01T00:00:00Z",
	}); err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	text, err := f.NewStyle(&excelize.Style{NumFmt: 49}) // 49 is "@", text
	if err != nil {
		return err
	}
	for i, s := range sheets {
		if i == 0 {
			err = f.SetSheetName("Sheet1", s.name)
		} else {
			_, err = f.NewSheet(s.name)
		}
		if err != nil {
			return err
		}
		for c, name := range s.header {
			col, err := excelize.ColumnNumberToName(c + 1)
			if err != nil {
				return err
			}
			if identifierColumns[ingest.Aliases[ingest.NormaliseHeader(name)]] {
				if err := f.SetColStyle(s.name, col, text); err != nil {
					return err
				}
			}
			if err := f.SetColWidth(s.name, col, col, float64(max(12, len(name)+2))); err != nil {
				return err
			}
			if err := setCell(f, s.name, c, 1, name); err != nil {
				return err
			}
		}
		if err := f.SetRowStyle(s.name, 1, 1, bold); err != nil {
			return err
		}
		for r, row := range s.rows {
			for c, v := range row {
				if err := setCell(f, s.name, c, r+2, v); err != nil {
					return err
				}
			}
		}
	}
	buf, err := f.WriteToBuffer()
	if err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func setCell(f *excelize.File, sheetName string, col, row int, v any) error {
	cell, err := excelize.CoordinatesToCellName(col+1, row)
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return f.SetCellStr(sheetName, cell, v)
	case float64:
		return f.SetCellFloat(sheetName, cell, v, -1, 64)
	case int:
		return f.SetCellInt(sheetName, cell, int64(v))
	default:
		return fmt.Errorf("cell %s: unexpected value %T", cell, v)
	}
}

func textCells(record []string) []any {
	cells := make([]any, len(record))
	for i, v := range record {
		cells[i] = v
	}
	return cells
}

// providerColumns are the canonical columns a provider's sample uses.
var providerColumns = map[string][]string{
	iotconnect.Name: {ingest.ColEID, ingest.ColIMEI, ingest.ColCMP, ingest.ColDomainID, ingest.ColEUICCAgreementID, ingest.ColLocaleID},
	asavie.Name: {ingest.ColCLI, ingest.ColICCID, ingest.ColAccount, ingest.ColDescription, ingest.ColInventoryRef,
		ingest.ColTariff, ingest.ColBundle, ingest.ColOperator},
	thingspace.Name: {ingest.ColEID, ingest.ColICCID, ingest.ColIMEI, ingest.ColAccountName, ingest.ColServicePlan,
		ingest.ColCarrierName, ingest.ColMDNZipCode, ingest.ColFirstName, ingest.ColLastName, ingest.ColAddressLine1,
		ingest.ColCity, ingest.ColState, ingest.ColZip, ingest.ColCountry},
}

// project picks columns out of a mixed-manifest record.
func project(d samples.Device, columns []string) []string {
	rec := d.Record()
	out := make([]string, len(columns))
	for i, c := range columns {
		for j, name := range samples.Columns {
			if name == c {
				out[i] = rec[j]
			}
		}
	}
	return out
}

func writeProviderXLSX(path, provider string) error {
	cols := providerColumns[provider]
	s := sheet{name: "Devices", header: cols}
	for _, d := range devices(provider, blockSingle, perProviderRows) {
		s.rows = append(s.rows, textCells(project(d, cols)))
	}
	return writeXLSX(path, []sheet{s})
}

// mixed.xlsx has a second sheet so that --sheet has something to choose.
func writeMixedXLSX(path string) error {
	devicesSheet := sheet{name: "Devices", header: samples.Columns}
	for _, d := range mixedDevices(blockMixed, 3*perProviderRows) {
		devicesSheet.rows = append(devicesSheet.rows, textCells(d.Record()))
	}
	spares := sheet{name: "Spares", header: samples.Columns}
	for _, d := range mixedDevices(blockSpares, 5) {
		spares.rows = append(spares.rows, textCells(d.Record()))
	}
	return writeXLSX(path, []sheet{devicesSheet, spares})
}
