package thingspace

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// listeningClient is a client in callback mode whose listener runs and is
// registered with a simulator; deliveries are posted by the test.
func listeningClient(t *testing.T, listen string) (*Client, *Simulator) {
	t.Helper()
	sim := NewSimulator(SimOptions{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg := testConfig(srv.URL)
	cfg.Callback = &CallbackConfig{Listen: listen, Username: "cb", Password: "cb-secret"}
	c := newTestClient(t, cfg)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c, sim
}

// rawHead sends a request head alone, never a byte of its body, and
// returns the status the listener answered and whether it closed the
// connection afterwards (rather than waiting for the body).
func rawHead(t *testing.T, addr, head string) (status int, closed bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatalf("write head: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(conn) // ends at the listener's close, or the deadline
	return rawStatus(got), err == nil
}

// rawStatus reads the status code of a raw HTTP answer, 0 if none.
func rawStatus(b []byte) int {
	m := regexp.MustCompile(`^HTTP/1\.[01] (\d{3}) `).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func TestCallbackToken(t *testing.T) {
	tok := callbackToken("cb-secret", testAccount)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok) {
		t.Fatalf("token %q, want 32 hex digits", tok)
	}
	if again := callbackToken("cb-secret", testAccount); again != tok {
		t.Errorf("token not stable: %q then %q", tok, again)
	}
	if other := callbackToken("cb-secret", "0000123456-00002"); other == tok {
		t.Errorf("two accounts share a token")
	}
	if other := callbackToken("cb-secreT", testAccount); other == tok {
		t.Errorf("two passwords give the same token")
	}
	// Two processes of the same config register the same URL.
	c1, sim := listeningClient(t, "127.0.0.1:0")
	url1 := sim.CallbackURL(testAccount)
	if !strings.HasSuffix(url1, "/callbacks/"+tok) || c1.callbackURL(testAccount) != url1 {
		t.Errorf("registered %q, want …/callbacks/%s", url1, tok)
	}
	if log := c1.CallbackURLForLog(); strings.Contains(log, tok[:5]) || !strings.HasSuffix(log, "/"+tok[:4]+"…") {
		t.Errorf("URL for logs %q", log)
	}
}

// TestCallbackRefusedUnread: whatever can be refused from the request line
// and headers is, without waiting for a byte of the body, and counted.
func TestCallbackRefusedUnread(t *testing.T) {
	c, _ := listeningClient(t, "127.0.0.1:0")
	addr := c.CallbackAddr().String()
	tok := callbackToken("cb-secret", testAccount)
	head := func(method, path string, length int) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, path, addr, length)
	}
	for _, tc := range []struct {
		name, head string
		want       int
	}{
		{"no token", head("POST", "/callbacks", 1000), 404},
		{"no token, big body", head("POST", "/callbacks", 1<<20), 404},
		{"wrong token", head("POST", "/callbacks/"+strings.Repeat("0", 32), 1000), 404},
		{"token not last", head("POST", "/callbacks/"+tok+"/", 1000), 404},
		{"token of another password", head("POST", "/callbacks/"+callbackToken("x", testAccount), 1000), 404},
		{"GET", head("GET", "/callbacks/"+tok, 0), 405},
		{"PUT", head("PUT", "/callbacks/"+tok, 1000), 405},
		{"declared too large", head("POST", "/callbacks/"+tok, MaxCallbackBody+1), 413},
	} {
		status, closed := rawHead(t, addr, tc.head)
		if status != tc.want || !closed {
			t.Errorf("%s: HTTP %d, closed %v; want %d and the connection closed without the body", tc.name, status, closed, tc.want)
		}
	}
	want := map[string]int64{RejectBadPath: 5, RejectBadMethod: 2, RejectTooLarge: 1, RejectTooMany: 0, RejectBadCredentials: 0, RejectMalformed: 0}
	if got := c.CallbackRejections(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejections %v, want %v", got, want)
	}
}

// recordingBody records whether the transport read it.
type recordingBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

// TestCallbackBodyNotRead: with Expect: 100-continue the sender waits for
// the listener to ask for the body; a request without the token is
// answered without it being asked for, a good delivery reads it.
func TestCallbackBodyNotRead(t *testing.T) {
	c, _ := listeningClient(t, "127.0.0.1:0")
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	send := func(u, body string) (int, bool) {
		rb := &recordingBody{r: strings.NewReader(body)}
		req, err := http.NewRequest(http.MethodPost, u, rb)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("Expect", "100-continue")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("post %s: %v", u, err)
		}
		resp.Body.Close()
		return resp.StatusCode, rb.read.Load()
	}
	good := c.callbackURL(testAccount)
	base := strings.TrimSuffix(good, "/"+callbackToken("cb-secret", testAccount))
	if code, read := send(base, cbBody("r1", "SUCCESS", "EXECUTED_SUCCESS", "")); code != 404 || read {
		t.Errorf("without the token: HTTP %d, body read %v; want 404, unread", code, read)
	}
	if code, read := send(good, cbBody("r1", "SUCCESS", "EXECUTED_SUCCESS", "")); code != 200 || !read {
		t.Errorf("good delivery: HTTP %d, body read %v; want 200, read", code, read)
	}
	if out := c.Check(context.Background(), testOrder(testEID), "r1"); out.Status != providers.Succeeded {
		t.Errorf("good delivery not in the inbox: %+v", out)
	}
}

// TestCallbackPathPrefixAndRestart: a proxy may put any prefix before the
// token; a restarted client takes deliveries to the URL registered before
// the crash, for its own account and for any account it has since
// checked a row of.
func TestCallbackPathPrefixAndRestart(t *testing.T) {
	c1, sim := listeningClient(t, "127.0.0.1:0")
	addr := c1.CallbackAddr().String()
	before := sim.CallbackURL(testAccount)
	other := "0000123456-00002"
	otherURL := "http://" + addr + "/callbacks/" + callbackToken("cb-secret", other)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := c1.cfg
	cfg.Callback = &CallbackConfig{Listen: addr, Username: "cb", Password: "cb-secret"}
	c2 := newTestClient(t, cfg)
	if err := c2.Start(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if after := sim.CallbackURL(testAccount); after != before {
		t.Errorf("registered %q after the restart, %q before", after, before)
	}
	postTo := func(u, requestID string) int {
		resp, err := http.Post(u, "application/json", strings.NewReader(cbBody(requestID, "SUCCESS", "EXECUTED_SUCCESS", "")))
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := postTo(before, "r1"); code != 200 {
		t.Errorf("delivery to the URL registered before the restart: HTTP %d", code)
	}
	tok := callbackToken("cb-secret", testAccount)
	if code := postTo("http://"+addr+"/proxy/thingspace/"+tok, "r2"); code != 200 {
		t.Errorf("delivery behind a path prefix: HTTP %d", code)
	}
	if code := postTo(otherURL, "r3"); code != 404 {
		t.Errorf("another account's URL before any of its rows was seen: HTTP %d, want 404", code)
	}
	o := testOrder(testEID)
	o.Fields["account_name"] = other
	c2.Check(context.Background(), o, "r3") // a recovered row of that account
	if code := postTo(otherURL, "r3"); code != 200 {
		t.Errorf("another account's URL after a row of it was checked: HTTP %d", code)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		if out := c2.Check(context.Background(), o, id); out.Status != providers.Succeeded {
			t.Errorf("%s not taken: %+v", id, out)
		}
	}
}

// TestCallbackPerClientLimit: a sender with MaxCallbackPerClient
// deliveries being read gets 429 for one more, after a short wait and
// without its body read.
func TestCallbackPerClientLimit(t *testing.T) {
	c, _ := listeningClient(t, "127.0.0.1:0")
	addr := c.CallbackAddr().String()
	path := "/callbacks/" + callbackToken("cb-secret", testAccount)
	var held []net.Conn
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	for range MaxCallbackPerClient {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		// A body of 100 bytes promised, 1 sent: the handler waits reading.
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", path)
	}
	eventually(t, "slots taken", func() bool {
		c.clients.mu.Lock()
		defer c.clients.mu.Unlock()
		s := c.clients.by["127.0.0.1"]
		return s != nil && len(s.sem) == MaxCallbackPerClient
	})
	start := time.Now()
	status, closed := rawHead(t, addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", path))
	if status != http.StatusTooManyRequests || !closed {
		t.Errorf("one over the limit: HTTP %d, closed %v; want 429, closed", status, closed)
	}
	if d := time.Since(start); d > callbackClientWait+time.Second {
		t.Errorf("429 took %v", d)
	}
	if n := c.CallbackRejections()[RejectTooMany]; n != 1 {
		t.Errorf("too_many %d, want 1", n)
	}
}

// TestCallbackChunkedOverCap: a body without a Content-Length is read up
// to the cap and refused there.
func TestCallbackChunkedOverCap(t *testing.T) {
	c, _ := listeningClient(t, "127.0.0.1:0")
	big := io.MultiReader(strings.NewReader(`{"pad":"`), bytes.NewReader(bytes.Repeat([]byte("a"), MaxCallbackBody+1)))
	req, err := http.NewRequest(http.MethodPost, c.callbackURL(testAccount), big) // unknown length: chunked
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked over the cap: HTTP %d, want 413", resp.StatusCode)
		}
	}
	if n := c.CallbackRejections()[RejectTooLarge]; n != 1 {
		t.Errorf("too_large %d, want 1 (post error %v)", n, err)
	}
}

func TestCallbackRejectionsPollMode(t *testing.T) {
	if r := newTestClient(t, testConfig("http://127.0.0.1:1")).CallbackRejections(); r != nil {
		t.Errorf("poll mode: %v, want nil", r)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
