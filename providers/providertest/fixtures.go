package providertest

import (
	"bufio"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// Fixture is one golden answer body in a provider package's testdata: a
// body in a shape a public source shows, where that source is, and what
// the client must make of it.
//
// The file is a txtar archive. Its comment holds "Key: value" lines:
//
//	Source: where the shape comes from (a reference page, an SDK model, a capture)
//	Form:   documented | alternate | captured | derived
//	Call:   the client call that reads it (submit, check, lookup, login, callback, ...)
//	HTTP:   the HTTP status it arrives with (default 200)
//
// and any other lines as notes. Its files are "body" (the answer, byte for
// byte as the source shows it, placeholders filled in where the source has
// them) and "want", "key=value" lines the table test compares with what
// the client read (status=, code=, retryable=, and the fields read).
type Fixture struct {
	Name   string
	Source string
	Form   string
	Call   string
	HTTP   int
	Body   []byte
	Want   map[string]string
}

// Fixtures reads every *.txtar in dir, failing the test on a file that
// lacks a Source, a Call, a body or a want section: a fixture must say
// where its shape comes from and what it proves.
func Fixtures(t *testing.T, dir string) []Fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	sort.Strings(paths)
	out := make([]Fixture, 0, len(paths))
	for _, p := range paths {
		a, err := txtar.ParseFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f := Fixture{Name: strings.TrimSuffix(filepath.Base(p), ".txtar"), HTTP: 200, Want: map[string]string{}}
		for _, line := range lines(a.Comment) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.TrimSpace(k) {
			case "Source":
				f.Source = v
			case "Form":
				f.Form = v
			case "Call":
				f.Call = v
			case "HTTP":
				if f.HTTP, err = strconv.Atoi(v); err != nil {
					t.Fatalf("%s: HTTP %q: %v", p, v, err)
				}
			}
		}
		var sawBody, sawWant bool
		for _, file := range a.Files {
			switch file.Name {
			case "body":
				f.Body, sawBody = file.Data, true
			case "want":
				sawWant = true
				for _, line := range lines(file.Data) {
					k, v, _ := strings.Cut(line, "=")
					f.Want[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
		}
		if f.Source == "" || f.Call == "" || !sawBody || !sawWant {
			t.Fatalf("%s: a fixture needs Source:, Call:, a body and a want section", p)
		}
		out = append(out, f)
	}
	return out
}

// lines returns the non-blank lines of b that are not # comments.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// Compare reports every want key whose value differs from got (a missing
// got key reads as ""), so a table test shows all differences at once.
func Compare(t *testing.T, f Fixture, got map[string]string) {
	t.Helper()
	for k, want := range f.Want {
		if got[k] != want {
			t.Errorf("%s (%s): %s = %q, want %q", f.Name, f.Source, k, got[k], want)
		}
	}
}
