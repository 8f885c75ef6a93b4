package sqlite

import (
	"encoding/json"
	"testing"
)

// The hand-written encoders must store exactly what json.Marshal would:
// reports and older simbulk versions read these columns back.
func TestJSONColumnsMatchEncodingJSON(t *testing.T) {
	texts := []string{"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\r", "\x00\x1f\x7f",
		"é ü 日本", "\u2028\u2029", "bad \xff utf-8", "=1+2", "89148000000000000001"}
	for _, cells := range [][]string{nil, {}, texts, {"one"}} {
		want := "[]"
		if cells != nil {
			b, _ := json.Marshal(cells)
			want = string(b)
		}
		if got := string(appendJSONStrings(nil, cells)); got != want {
			t.Errorf("cells %q: got %s, want %s", cells, got, want)
		}
	}
	fields := map[string]string{}
	for i, s := range texts {
		fields[s] = texts[len(texts)-1-i]
	}
	maps := []map[string]string{nil, {}, {"account_name": "0000123456-00001", "service_plan": "M2M 5GB"}, fields}
	for _, f := range maps {
		want := jsonText(f)
		if got := string(appendJSONFields(nil, f)); got != want {
			t.Errorf("fields %q: got %s, want %s", f, got, want)
		}
	}
	// One encoder over rows whose field names change, as a manifest of
	// several providers has: the names it sorted for one row never stand
	// for another's.
	var e fieldsEncoder
	for _, f := range append(maps, maps[2], map[string]string{"account_name": "x", "plan": "y"}, map[string]string{"service_plan": "z"}, maps[2], nil, fields) {
		want := jsonText(f)
		if got := string(e.append(nil, f)); got != want {
			t.Errorf("fields %q after others: got %s, want %s", f, got, want)
		}
	}
}
