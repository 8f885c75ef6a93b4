package samples

import (
	"fmt"
	"testing"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/asavie"
)

// Devices must be valid and never share an identifier, also past the
// 1000 MSISDNs of the drama range, since the benchmark builds a million.
func TestNewDeviceValidAndUnique(t *testing.T) {
	seen := map[string]string{}
	use := func(kind, id, who string) {
		if id == "" {
			return
		}
		if prev, dup := seen[kind+id]; dup {
			t.Fatalf("%s %s used by %s and %s", kind, id, prev, who)
		}
		seen[kind+id] = who
	}
	for n := range 3000 {
		for _, p := range Providers {
			d := NewDevice(p, n)
			who := fmt.Sprintf("%s #%d", p, n)
			if d.EID != "" && !ingest.EIDValid(d.EID) {
				t.Fatalf("%s: EID %s fails MOD 97-10", who, d.EID)
			}
			if d.ICCID != "" && !ingest.LuhnValid(d.ICCID) {
				t.Fatalf("%s: ICCID %s fails Luhn", who, d.ICCID)
			}
			if d.IMEI != "" && (len(d.IMEI) != 15 || !ingest.LuhnValid(d.IMEI)) {
				t.Fatalf("%s: IMEI %s is not 15 digits passing Luhn", who, d.IMEI)
			}
			use("eid", d.EID, who)
			use("iccid", d.ICCID, who)
			use("imei", d.IMEI, who)
			use("cli", d.CLI, who)
		}
	}
}

func TestRecordMatchesColumns(t *testing.T) {
	if got, want := len(NewDevice(asavie.Name, 1).Record()), len(Columns); got != want {
		t.Fatalf("Record has %d fields, Columns %d", got, want)
	}
}
