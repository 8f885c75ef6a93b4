// Command benchupload measures the console with a large upload: the time
// from posting a manifest to the first page of its problem table, and the
// server's peak memory while it validates. `make bench` runs it.
//
// It starts `simbulk serve --simulate` as a process of its own (so the
// peak resident set the kernel reports is the server's alone), logs in
// with the one-time demo password it prints, and uploads generated mixed
// manifests through the upload form, as a browser does, one size after
// another. One row in a hundred carries a bad check digit, so the table
// has problems to page through. Memory should not grow with the file: the
// upload streams to disk and validation streams from it.
package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/samples"
)

func main() {
	bin := flag.String("simbulk", "bin/simbulk", "the simbulk binary to serve with")
	rows := flag.String("rows", "100000,1000000", "comma-separated manifest sizes in rows")
	flag.Parse()
	if err := run(*bin, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "benchupload:", err)
		os.Exit(1)
	}
}

func run(bin, sizes string) error {
	dir, err := os.MkdirTemp("", "benchupload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(bin, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	c, err := srv.login()
	if err != nil {
		return err
	}
	fmt.Printf("Console upload: time from posting the manifest to its problem table, and the server's peak memory\n")
	fmt.Printf("%10s %10s %12s %12s %14s %16s\n", "rows", "MiB", "problems", "upload→table", "server peak", "peak before")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-rows %q: %w", s, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("devices-%d.csv", n))
		bad, err := writeManifest(path, n)
		if err != nil {
			return err
		}
		fi, _ := os.Stat(path)
		before := srv.peakRSS()
		took, err := c.uploadToTable(path, bad)
		if err != nil {
			return err
		}
		fmt.Printf("%10d %10.1f %12d %12s %11.1f MiB %12.1f MiB\n", n, float64(fi.Size())/(1<<20), bad,
			took.Round(time.Millisecond), float64(srv.peakRSS())/(1<<20), float64(before)/(1<<20))
	}
	return nil
}

// writeManifest writes n mixed-provider rows, one in a hundred with a
// bad ICCID check digit, and returns how many are bad.
func writeManifest(path string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := csv.NewWriter(bufio.NewWriterSize(f, 1<<20))
	_ = w.Write(samples.Columns)
	bad := 0
	iccid := -1
	for i, c := range samples.Columns {
		if c == ingest.ColICCID {
			iccid = i
		}
	}
	for i := range n {
		rec := samples.NewDevice(samples.Providers[i%len(samples.Providers)], i+1).Record()
		if i%100 == 99 && iccid >= 0 && rec[iccid] != "" {
			last := rec[iccid][len(rec[iccid])-1]
			rec[iccid] = rec[iccid][:len(rec[iccid])-1] + string('0'+(last-'0'+1)%10)
			bad++
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return 0, err
	}
	return bad, f.Close()
}

type server struct {
	cmd      *exec.Cmd
	url      string
	password string
}

var (
	listening = regexp.MustCompile(`console listening" url=(\S+)`)
	demoLogin = regexp.MustCompile(`log in as demo with the one-time password (\S+)`)
)

func startServer(bin, dir string) (*server, error) {
	cmd := exec.Command(bin, "serve", "--simulate", "--addr", "127.0.0.1:0", "--upload-limit-mib", "1024",
		"--db", filepath.Join(dir, "simbulk.db"), "--data", filepath.Join(dir, "console"), "--out", filepath.Join(dir, "runs"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd}
	sc := bufio.NewScanner(stderr)
	for (s.url == "" || s.password == "") && sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			s.url = m[1]
		}
		if m := demoLogin.FindStringSubmatch(sc.Text()); m != nil {
			s.password = m[1]
		}
	}
	if s.url == "" || s.password == "" {
		s.stop()
		return nil, errors.New("the console did not say where it listens and how to log in")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}

// peakRSS is the server's peak resident set (VmHWM), in bytes.
func (s *server) peakRSS() uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type client struct {
	s    *server
	http *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) page(path string) (string, error) {
	resp, err := c.http.Get(c.s.url + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), err
}

func (s *server) login() (*client, error) {
	jar, _ := cookiejar.New(nil)
	c := &client{s: s, http: &http.Client{Jar: jar}}
	if _, err := c.page("/login"); err != nil {
		return nil, err
	}
	resp, err := c.http.PostForm(s.url+"/login", url.Values{"csrf": {c.csrf}, "user": {"demo"}, "password": {s.password}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if _, err := c.page("/"); err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	return c, nil
}

// uploadToTable posts the manifest through the upload form, follows the
// redirect to its page, and returns the time until the page with the
// first problems has arrived.
func (c *client) uploadToTable(path string, wantProblems int) (time.Duration, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("manifest", filepath.Base(path))
		if err == nil {
			var f *os.File
			if f, err = os.Open(path); err == nil {
				_, err = io.Copy(part, f)
				f.Close()
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	started := time.Now()
	resp, err := c.http.Post(c.s.url+"/uploads?csrf="+url.QueryEscape(c.csrf), mw.FormDataContentType(), pr)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(started)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `id="problems"`) {
		return 0, fmt.Errorf("upload: %s, no problem table", resp.Status)
	}
	if want := fmt.Sprintf("(%d problems)", wantProblems); !strings.Contains(string(b), want) {
		return 0, fmt.Errorf("the problem table does not say %s", want)
	}
	return took, nil
}
