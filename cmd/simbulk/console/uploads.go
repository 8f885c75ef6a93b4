package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest"
)

// Upload is a manifest a person uploaded and what validation found in it.
// Its files live in DATA/uploads/<id>/: the manifest as uploaded, the
// problems one JSON line each, and the invalid rows as CSV.
type Upload struct {
	ID       string    `json:"upload_id"`
	Name     string    `json:"name"` // the file name as uploaded (cleaned)
	Size     int64     `json:"size"`
	User     string    `json:"user"`
	Uploaded time.Time `json:"uploaded"`
	// Provider is the provider of every row ("" when the file has a
	// provider column); Sheet the XLSX sheet read and Sheets all of them.
	Provider string   `json:"provider,omitempty"`
	Sheet    string   `json:"sheet,omitempty"`
	Sheets   []string `json:"sheets,omitempty"`
	// Unreadable says why the file could not be read at all.
	Unreadable string `json:"unreadable,omitempty"`
	Rows       int    `json:"rows"`
	Valid      int    `json:"valid"`
	Invalid    int    `json:"invalid"`
	Problems   int    `json:"problems"`
	Warnings   int    `json:"warnings"`
	// ByCode and ByColumn count problems; Cells counts them by code and
	// column, so any filter's total is known without reading them all.
	ByCode   map[string]int            `json:"by_code"`
	ByColumn map[string]int            `json:"by_column"`
	Cells    map[string]map[string]int `json:"-"`
	Took     time.Duration             `json:"took_ns"`
	// RunID is the run started from it, once started.
	RunID string `json:"run_id,omitempty"`
}

// uploads keeps uploaded manifests on disk.
type uploads struct {
	dir   string
	limit int64
	now   func() time.Time
}

const (
	metaFile     = "upload.json"
	problemsFile = "problems.jsonl"
	invalidFile  = "invalid-rows.csv"
)

// ErrTooLarge is an upload past the size limit.
var ErrTooLarge = errors.New("too large")

var idPattern = regexp.MustCompile(`^[0-9a-f]{20}$`)

func newUploadID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanName keeps a file name safe to store and show: its base, letters,
// digits and a few marks, at most 100 characters.
func cleanName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, `\`, "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	if out == "" {
		out = "manifest"
	}
	return out
}

func (u *uploads) path(id string, file string) string { return filepath.Join(u.dir, id, file) }

// receive streams a multipart upload to disk: form fields provider and
// sheet, and the file part "manifest". Nothing of the file is held in
// memory; a file past the limit is removed and ErrTooLarge returned.
func (u *uploads) receive(mr *multipart.Reader, user string) (*Upload, error) {
	up := &Upload{ID: newUploadID(), User: user, Uploaded: u.now().UTC()}
	dir := filepath.Join(u.dir, up.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	gotFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the upload: %w", err)
		}
		switch part.FormName() {
		case "provider", "sheet", "csrf":
			b, err := io.ReadAll(io.LimitReader(part, 256))
			if err != nil {
				return nil, fmt.Errorf("read the upload: %w", err)
			}
			v := strings.TrimSpace(string(b))
			if part.FormName() == "provider" {
				up.Provider = v
			} else if part.FormName() == "sheet" {
				up.Sheet = v
			}
		case "manifest":
			if gotFile {
				return nil, errors.New("one manifest per upload")
			}
			gotFile = true
			up.Name = cleanName(part.FileName())
			if up.Size, err = u.store(part, filepath.Join(dir, up.Name)); err != nil {
				return nil, err
			}
		}
		part.Close()
	}
	if !gotFile || up.Size == 0 {
		return nil, errors.New("no manifest in the upload: choose a CSV or XLSX file")
	}
	ok = true
	return up, nil
}

// store copies an uploaded file to path, owner-only, up to the limit.
func (u *uploads) store(r io.Reader, path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(r, u.limit+1))
	if err == nil && n > u.limit {
		err = ErrTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// validate reads the upload's manifest once, streaming: problems go to a
// file as they are found, invalid rows to a CSV ready to fix and upload
// again, and only counts stay in memory, so a million-row file costs no
// more memory than a small one.
func (u *uploads) validate(ctx context.Context, up *Upload, opts ingest.ValidateOptions) error {
	started := u.now()
	*up = Upload{ID: up.ID, Name: up.Name, Size: up.Size, User: up.User, Uploaded: up.Uploaded,
		Provider: up.Provider, Sheet: up.Sheet, RunID: up.RunID,
		ByCode: map[string]int{}, ByColumn: map[string]int{}, Cells: map[string]map[string]int{}}
	r, err := ingest.OpenContext(ctx, u.path(up.ID, up.Name), ingest.OpenOptions{Sheet: up.Sheet})
	if err != nil {
		up.Unreadable = strings.TrimPrefix(err.Error(), "open manifest "+u.path(up.ID, up.Name)+": ")
		up.Took = u.now().Sub(started)
		return u.save(up)
	}
	defer r.Close()
	if sr, ok := r.(ingest.SheetReader); ok {
		up.Sheet, up.Sheets = sr.Sheet(), sr.Sheets()
	}
	pf, err := os.OpenFile(u.path(up.ID, problemsFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer pf.Close()
	pw := bufio.NewWriterSize(pf, 64<<10)
	enc := json.NewEncoder(pw)
	inf, err := os.OpenFile(u.path(up.ID, invalidFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer inf.Close()
	iw := csv.NewWriter(inf)
	if err := iw.Write(r.Header().Names); err != nil {
		return err
	}
	count := func(problems []ingest.Problem) error {
		for _, p := range problems {
			up.Problems++
			if p.Severity == ingest.SeverityWarning {
				up.Warnings++
			}
			up.ByCode[p.Code]++
			up.ByColumn[p.Column]++
			if up.Cells[p.Code] == nil {
				up.Cells[p.Code] = map[string]int{}
			}
			up.Cells[p.Code][p.Column]++
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}
	rows := 0
	sum, headerProblems, err := ingest.Scan(r, opts, func(row ingest.Row, problems []ingest.Problem) error {
		if rows++; rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if ingest.HasErrors(problems) {
			if err := iw.Write(row.Values); err != nil {
				return err
			}
		}
		return count(problems)
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The file stopped being readable part way (a cut-off XLSX): what
		// was read is shown, with why it stopped.
		up.Unreadable = err.Error()
	}
	if err := count(headerProblems); err != nil {
		return err
	}
	up.Rows, up.Valid, up.Invalid = sum.Rows, sum.Valid, sum.Invalid
	iw.Flush()
	if err := iw.Error(); err != nil {
		return err
	}
	if err := pw.Flush(); err != nil {
		return err
	}
	up.Took = u.now().Sub(started)
	return u.save(up)
}

// uploadMeta is Upload as stored, with the per-cell counts Upload's JSON
// answer leaves out.
type uploadMeta struct {
	*Upload
	Cells map[string]map[string]int `json:"cells"`
}

func (u *uploads) save(up *Upload) error {
	b, err := json.Marshal(uploadMeta{Upload: up, Cells: up.Cells})
	if err != nil {
		return err
	}
	tmp := u.path(up.ID, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, u.path(up.ID, metaFile))
}

// get reads an upload's record; ok is false when there is none.
func (u *uploads) get(id string) (*Upload, bool) {
	if !idPattern.MatchString(id) {
		return nil, false
	}
	b, err := os.ReadFile(u.path(id, metaFile))
	if err != nil {
		return nil, false
	}
	m := uploadMeta{Upload: &Upload{}}
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	m.Upload.Cells = m.Cells
	return m.Upload, true
}

// total is how many problems match the filter (either may be empty).
func (up *Upload) total(code, column string) int {
	switch {
	case code == "" && column == "":
		return up.Problems
	case column == "":
		return up.ByCode[code]
	case code == "":
		return up.ByColumn[column]
	}
	return up.Cells[code][column]
}

// problems returns the page of problems that match the filter, reading
// the problem file as a stream: skipped problems are never decoded whole.
func (u *uploads) problems(up *Upload, code, column string, offset, limit int) ([]ingest.Problem, error) {
	f, err := os.Open(u.path(up.ID, problemsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []ingest.Problem
	matched := 0
	// A cheap test on the raw line first: most lines of a big file are
	// skipped, and decoding only the candidates keeps paging fast.
	var codeNeedle, colNeedle []byte
	if code != "" {
		codeNeedle, _ = json.Marshal(code)
	}
	if column != "" {
		colNeedle, _ = json.Marshal(column)
	}
	for sc.Scan() && len(out) < limit {
		line := sc.Bytes()
		if (codeNeedle != nil && !bytes.Contains(line, codeNeedle)) || (colNeedle != nil && !bytes.Contains(line, colNeedle)) {
			continue
		}
		var p ingest.Problem
		if err := json.Unmarshal(line, &p); err != nil {
			return nil, err
		}
		if (code != "" && p.Code != code) || (column != "" && p.Column != column) {
			continue
		}
		if matched++; matched > offset {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}
