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
	for _, f := range []map[string]string{nil, {}, {"account_name": "0000123456-00001", "service_plan": "M2M 5GB"}, fields} {
		want := jsonText(f)
		if got := string(appendJSONFields(nil, f)); got != want {
			t.Errorf("fields %q: got %s, want %s", f, got, want)
		}
	}
}
