package pipeline

import (
	"slices"
	"testing"

	"github.com/simbulk/simbulk/providers"
)

func TestCompare(t *testing.T) {
	row := RowRecord{Row: 7, Provider: "asavie", CLI: "(+44)7700900123", ICCID: "8944000000000000018",
		Result: map[string]string{"imsi": "234150000000001"}}
	active := func(ids map[string]string) providers.Subscription {
		return providers.Subscription{Found: true, Active: true, State: "live", Identifiers: ids}
	}
	cases := []struct {
		name string
		sub  providers.Subscription
		want []string // kind:expected:actual
	}{
		{"in sync", active(map[string]string{"cli": "(+44)7700900123", "iccid": "8944000000000000018"}), nil},
		{"same numbers written differently", active(map[string]string{"cli": "+447700900123", "iccid": "894400000000000001"}), nil},
		{"missing", providers.Subscription{}, []string{"missing:present:not found"}},
		{"another SIM", active(map[string]string{"cli": "(+44)7700900123", "iccid": "8944000000000000026"}),
			[]string{"mismatch:iccid=8944000000000000018:iccid=8944000000000000026"}},
		{"IMSI the rollout recorded changed", active(map[string]string{"imsi": "234150000000002"}),
			[]string{"mismatch:imsi=234150000000001:imsi=234150000000002"}},
		{"suspended", providers.Subscription{Found: true, State: "suspend", Identifiers: map[string]string{}},
			[]string{"state:active:suspend"}},
		{"still pending", providers.Subscription{Found: true, Pending: true, State: "pending", Identifiers: map[string]string{}},
			[]string{"state:active:pending (pending)"}},
		{"somebody else's record", providers.Subscription{Found: true, Active: true, Conflict: "under another agreement"},
			[]string{"mismatch:this row's record:under another agreement"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range Compare(row, tc.sub) {
				if f.Row != 7 || f.Provider != "asavie" || f.ID != row.CLI {
					t.Errorf("finding %+v does not name row 7, asavie, %s", f, row.CLI)
				}
				got = append(got, string(f.Kind)+":"+f.Expected+":"+f.Actual)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}
