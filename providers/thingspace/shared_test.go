package thingspace

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// memCallbacks is a providers.CallbackStore in memory, as two hosts'
// clients would share the run's checkpoint (pipeline/postgres's own
// tests cover the real one).
type memCallbacks struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail bool
}

func (s *memCallbacks) PutCallback(_ context.Context, provider string, keys []string, result []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("checkpoint out of reach")
	}
	for _, k := range keys {
		if _, ok := s.m[provider+" "+k]; !ok {
			s.m[provider+" "+k] = result
		}
	}
	return nil
}

func (s *memCallbacks) Callback(_ context.Context, provider string, keys []string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if b, ok := s.m[provider+" "+k]; ok {
			return b, true, nil
		}
	}
	return nil, false, nil
}

// TestSharedCallbacks: a callback one host's listener took completes the
// row another host follows, within the callback grace, without a poll;
// what the hosts share holds no credential; a progress report is not
// shared, and a store out of reach is counted, not refused.
func TestSharedCallbacks(t *testing.T) {
	store := &memCallbacks{m: map[string][]byte{}}
	clk := &fakeClock{t: time.Now()}
	a, b := callbackClient(t, clk.Now), callbackClient(t, clk.Now) // base URL unreachable: a poll would fail
	a.ShareCallbacks(store)
	b.ShareCallbacks(store)
	o := testOrder(testEID)

	if code := post(a, cbBody("r1", "IN_PROGRESS", "", "")); code != 200 {
		t.Fatalf("progress: %d", code)
	}
	if len(store.m) != 0 {
		t.Errorf("a progress report was shared: %v", store.m)
	}
	if code := post(a, cbBody("r1", "SUCCESS", "EXECUTED_SUCCESS", "")); code != 200 {
		t.Fatalf("final: %d", code)
	}
	for k, v := range store.m {
		if bytes.Contains(v, []byte("cb-secret")) || bytes.Contains(v, []byte(`"cb"`)) {
			t.Errorf("shared result under %s holds the callback credentials: %s", k, v)
		}
	}
	out := b.Check(context.Background(), o, "r1")
	if out.Status != providers.Succeeded || out.Result["msisdn"] != "2015550100" || out.Result["euicc_status"] != "EXECUTED_SUCCESS" {
		t.Errorf("host b's Check of a's delivery: %+v %v", out, out.Err)
	}
	if out := b.Check(context.Background(), o, "r2"); out.Status != providers.Accepted || out.Err != nil {
		t.Errorf("another request's Check: %+v %v", out, out.Err)
	}
	// Kept under the request and each identifier it named.
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range store.m {
			if !yield(strings.TrimPrefix(k, Name+" ")) {
				return
			}
		}
	})
	if want := []string{"r1|eid|" + testEID}; !slices.Equal(keys, want) {
		t.Errorf("shared keys %v, want %v", keys, want)
	}

	store.fail = true
	if code := post(a, cbBody("r3", "SUCCESS", "EXECUTED_SUCCESS", "")); code != 200 {
		t.Errorf("a delivery the store could not keep: %d, want 200 (it is in a's inbox)", code)
	}
	if st := a.CallbackStats(); st.NotShared != 1 {
		t.Errorf("stats %+v, want one not shared", st)
	}
	if out := a.Check(context.Background(), o, "r3"); out.Status != providers.Succeeded {
		t.Errorf("a's own delivery: %+v", out)
	}
}
