package pipeline

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// adaptiveLimiter is a provider's shared rate limit that backs off when the
// provider answers 429 and climbs back to the configured rate as requests
// succeed (additive increase, multiplicative decrease). A 429's
// Retry-After also pauses every worker of the lane, not just the one that
// was told: the provider is telling the client, not the request.
type adaptiveLimiter struct {
	target float64 // configured rate; 0 = unlimited
	lim    *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
}

func newAdaptiveLimiter(perSecond float64) *adaptiveLimiter {
	a := &adaptiveLimiter{target: perSecond}
	if perSecond > 0 {
		// Burst 1: the configured rate is a promise to the provider, and a
		// burst at start would spend it in one go.
		a.lim = rate.NewLimiter(rate.Limit(perSecond), 1)
	} else {
		a.lim = rate.NewLimiter(rate.Inf, 1)
	}
	return a
}

// Wait blocks until the lane may send one request.
func (a *adaptiveLimiter) Wait(ctx context.Context) error {
	a.mu.Lock()
	until := a.pausedUntil
	a.mu.Unlock()
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return a.lim.Wait(ctx)
}

// TooMany slows the lane down after a 429.
func (a *adaptiveLimiter) TooMany(retryAfter time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if retryAfter > 0 {
		if until := time.Now().Add(retryAfter); until.After(a.pausedUntil) {
			a.pausedUntil = until
		}
	}
	if a.target > 0 {
		a.lim.SetLimit(max(rate.Limit(a.target/20), a.lim.Limit()/2))
	}
}

// OK lets the lane speed up again after a request that was not refused.
func (a *adaptiveLimiter) OK() {
	if a.target <= 0 {
		return
	}
	cur := a.lim.Limit()
	if float64(cur) >= a.target {
		return
	}
	a.lim.SetLimit(min(rate.Limit(a.target), cur+rate.Limit(a.target/50)))
}

// Limit is the current rate (requests per second); +Inf when unlimited.
func (a *adaptiveLimiter) Limit() float64 { return float64(a.lim.Limit()) }
