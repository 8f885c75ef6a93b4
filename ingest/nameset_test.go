package ingest

import (
	"fmt"
	"slices"
	"testing"
)

// nameSet must answer as slices.Contains would for the names it holds,
// and yes to everything once it holds too many (Get then asks the map).
func TestNameSet(t *testing.T) {
	canon := slices.Sorted(func(yield func(string) bool) {
		for _, c := range Aliases {
			if !yield(c) {
				return
			}
		}
	})
	canon = slices.Compact(canon)
	probes := append(slices.Clone(canon), "", "x", "accountname", "account_name ", "zip44", "custom_field")
	for _, names := range [][]string{nil, {""}, {ColAccountName, ColServicePlan}, canon[:len(canon)/2], canon, {"custom_field", ColZip, ColZip}} {
		s := newNameSet(names)
		for _, p := range probes {
			if got, want := s.has(p), slices.Contains(names, p); got != want {
				t.Errorf("set of %q: has(%q) = %v, want %v", names, p, got, want)
			}
		}
	}
	var many []string
	for i := range nameSlots {
		many = append(many, fmt.Sprintf("field%d", i))
	}
	if s := newNameSet(many); !s.has("field0") || !s.has("anything") {
		t.Errorf("a set of %d names must say yes to every name", len(many))
	}
}

// A field that a Fields rule sets, though no column or default names it,
// is there for the rule's next Get and in the row.
func TestFieldCheckSetsNewField(t *testing.T) {
	RegisterManifest("setter", Manifest{Fields: func(c *FieldCheck) {
		c.Set("region", "eu")
		if got := c.Get("region"); got != "eu" {
			c.Bad("region", CodeBadValue, "Get after Set gave "+got)
		}
	}})
	t.Cleanup(func() { UnregisterManifest("setter") })
	v, _ := NewValidator(NewHeader([]string{"provider"}), ValidateOptions{})
	row, problems := v.Check(Record{Row: 2, Values: []string{"setter"}, FieldCount: 1})
	if len(problems) != 0 || row.Fields()["region"] != "eu" {
		t.Fatalf("fields %v, problems %v", row.Fields(), problems)
	}
}
