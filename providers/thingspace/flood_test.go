//go:build unix

package thingspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// floodConns is how many connections the flood test opens that each
// declare a 1 MB body and trickle it, kept small for CI; the audit's 8,000
// is SIMBULK_FLOOD=8000. A quarter as many again send junk to wrong paths.
const floodConns = 2000

// floodMemLimit is the most the process may grow during the flood (the
// audit saw 15.2 GB).
const floodMemLimit = 256 << 20

// floodCount is floodConns, or SIMBULK_FLOOD, scaled down to what the
// file-descriptor limit (and the race detector's goroutine limit) allows.
func floodCount(t *testing.T) int {
	n := floodConns
	if v := os.Getenv("SIMBULK_FLOOD"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m <= 0 {
			t.Fatalf("SIMBULK_FLOOD=%q: want a positive count", v)
		}
		n = m
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		// Each connection takes a descriptor here; the listener's side
		// takes at most MaxCallbackConns more, plus the test's own.
		if room := (int(rl.Cur) - MaxCallbackConns - 200) * 4 / 5; n > room {
			t.Logf("flood: %d connections scaled down to %d: open-file limit %d", n, room, rl.Cur)
			n = room
		}
	}
	if raceEnabled && n > 5000 {
		t.Logf("flood: %d connections scaled down to 5000 under the race detector", n)
		n = 5000
	}
	return max(n, 10)
}

// floodResult is what became of one flood connection.
type floodResult struct {
	status int  // the status answered, 0 if none was read
	ended  bool // the listener closed or reset the connection
	dialed bool
}

// floodConn opens one connection, sends the head and then the body a
// byte at a time every 50 ms, until the listener answers and closes, or
// stop. opened is called once, when the head is sent or the dial failed.
func floodConn(addr, head string, body []byte, trickle bool, stop <-chan struct{}, opened func()) floodResult {
	var res floodResult
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		opened()
		return res
	}
	defer conn.Close()
	res.dialed = true
	_, err = io.WriteString(conn, head)
	if err == nil && !trickle {
		_, _ = conn.Write(body)
	}
	opened()
	if err != nil {
		res.ended = true
		return res
	}
	var got []byte
	buf := make([]byte, 512)
	for {
		select {
		case <-stop:
			res.status = rawStatus(got)
			return res
		default:
		}
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if trickle && len(body) > 0 {
				_, _ = conn.Write(body[:1])
				body = body[1:]
			}
		case err != nil: // EOF or reset: the listener hung up
			res.status, res.ended = rawStatus(got), true
			return res
		}
	}
}

// memSampler records the process's largest Go heap in use (with
// goroutine stacks) and memory obtained from the OS while it runs.
type memSampler struct {
	stop      chan struct{}
	done      chan struct{}
	inUse     uint64
	sys       uint64
	baseInUse uint64
	baseSys   uint64
}

func startMemSampler() *memSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{}),
		baseInUse: ms.HeapInuse + ms.StackInuse, baseSys: ms.Sys}
	go func() {
		defer close(s.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			s.inUse = max(s.inUse, ms.HeapInuse+ms.StackInuse)
			s.sys = max(s.sys, ms.Sys)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) end() {
	close(s.stop)
	<-s.done
}

// TestCallbackFlood is the audit's attack, scaled for CI: thousands of
// connections declaring 1 MB bodies and trickling them, and junk posted to
// wrong paths, while ThingSpace's genuine delivery comes in. The genuine
// one must land, the process must stay small, and the flood must be over
// in seconds.
func TestCallbackFlood(t *testing.T) {
	n := floodCount(t)
	junk := n / 4
	c, _ := listeningClient(t, "127.0.0.1:0")
	addr := c.CallbackAddr().String()
	tokenPath := "/callbacks/" + callbackToken("cb-secret", testAccount)

	rssBefore := peakmem.RSS()
	mem := startMemSampler()
	start := time.Now()
	stop := make(chan struct{})
	results := make([]floodResult, n+junk)
	// The genuine delivery goes out once half the flood is open, so that
	// it races the rest of it.
	var ready, done sync.WaitGroup
	ready.Add(n + junk)
	done.Add(n + junk)
	var openedN atomic.Int64
	half := make(chan struct{})
	opened := func() {
		if openedN.Add(1) == int64(n+junk)/2 {
			close(half)
		}
		ready.Done()
	}
	trickleBody := []byte(`{"username":"x","password":"y","pad":"` + strings.Repeat("a", 64))
	wantBadPath, wantTooLarge := 0, 0
	for i := range n + junk {
		path, length, trickle := "/callbacks", 1_000_000, true
		var body []byte
		switch {
		case i >= n: // junk bodies, sent whole, to paths a scanner tries
			path = []string{"/", "/wp-login.php", "/callbacks/" + strings.Repeat("f", 32), "/api/callback"}[i%4]
			body = make([]byte, 512+rand.IntN(4096))
			for j := range body {
				body[j] = byte(rand.IntN(256))
			}
			length, trickle = len(body), false
			wantBadPath++
		case i%10 == 0: // someone who knows the URL, declaring 1 MB
			path = tokenPath
			body = trickleBody
			wantTooLarge++
		default:
			body = trickleBody
			wantBadPath++
		}
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, length)
		go func() {
			defer done.Done()
			results[i] = floodConn(addr, head, body, trickle, stop, opened)
		}()
	}
	<-half
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	sent := time.Now()
	resp, err := hc.Post(c.callbackURL(testAccount), "application/json", strings.NewReader(cbBody("flood-1", "SUCCESS", "EXECUTED_SUCCESS", "")))
	landed := time.Since(sent)
	code := 0
	if err == nil {
		code = resp.StatusCode
		resp.Body.Close()
	}
	ready.Wait() // every connection open and its head sent
	openedIn := time.Since(start)

	// The flood ends by itself as the listener hangs up; stop what is left.
	over := make(chan struct{})
	go func() { done.Wait(); close(over) }()
	select {
	case <-over:
	case <-time.After(20 * time.Second):
		close(stop)
		<-over
	}
	elapsed := time.Since(start)
	mem.end()
	rssAfter := peakmem.RSS()

	dialed, ended, answered := 0, 0, 0
	for _, r := range results {
		if r.dialed {
			dialed++
		}
		if r.ended {
			ended++
		}
		if r.status != 0 {
			answered++
		}
	}
	rej := c.CallbackRejections()
	out := c.Check(context.Background(), testOrder(testEID), "flood-1")
	t.Logf("flood: %d trickling + %d junk connections (%d opened in %v), over in %v; %d closed by the listener (%d read an answer), %d held to the end",
		n, junk, dialed, openedIn.Round(time.Millisecond), elapsed.Round(time.Millisecond), ended, answered, dialed-ended)
	t.Logf("flood: genuine delivery sent with %d of the flood open: HTTP %d (err %v) after %v; Check: %s",
		(n+junk)/2, code, err, landed.Round(time.Millisecond), out.Status)
	t.Logf("flood: Go heap+stacks in use %s before, %s at peak; memory from the OS %s before, %s at peak; peak RSS (VmHWM) %s before, %s after",
		peakmem.MiB(mem.baseInUse), peakmem.MiB(mem.inUse), peakmem.MiB(mem.baseSys), peakmem.MiB(mem.sys), peakmem.MiB(rssBefore), peakmem.MiB(rssAfter))
	t.Logf("flood: rejections %v", rej)

	if code != http.StatusOK || out.Status != providers.Succeeded {
		t.Errorf("genuine delivery: HTTP %d, %v; Check %s: it must land during the flood", code, err, out.Status)
	}
	if grew := mem.sys - mem.baseSys; mem.sys > mem.baseSys && grew > floodMemLimit {
		t.Errorf("memory from the OS grew %s during the flood, limit %s", peakmem.MiB(grew), peakmem.MiB(floodMemLimit))
	}
	if grew := mem.inUse - mem.baseInUse; mem.inUse > mem.baseInUse && grew > floodMemLimit {
		t.Errorf("heap and stacks grew %s during the flood, limit %s", peakmem.MiB(grew), peakmem.MiB(floodMemLimit))
	}
	// Under the race detector the resident set also holds its shadow
	// memory, some 80 KiB per goroutine of the test's own flood: not the
	// listener's, so only the Go runtime's figures are held to the limit.
	if !raceEnabled && rssAfter > rssBefore && rssAfter-rssBefore > floodMemLimit {
		t.Errorf("peak RSS grew %s during the flood, limit %s", peakmem.MiB(rssAfter-rssBefore), peakmem.MiB(floodMemLimit))
	}
	if dialed != n+junk {
		t.Errorf("%d of %d connections could not be opened", n+junk-dialed, n+junk)
	}
	if ended != dialed {
		t.Errorf("%d connections still open after %v: the listener must hang up on them", dialed-ended, elapsed)
	}
	if rej[RejectBadPath] != int64(wantBadPath) || rej[RejectTooLarge] != int64(wantTooLarge) {
		t.Errorf("rejections %v, want %d bad_path and %d too_large", rej, wantBadPath, wantTooLarge)
	}
	if st := c.CallbackStats(); st.Received != 1 {
		t.Errorf("stats %+v: only the genuine delivery is taken", st)
	}
}
