package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// workLock is the pg_advisory_lock key one simbulk holds while it works
// on the checkpoint.
const workLock = 0x73696d62756c6b + 1

// ErrLocked is returned by Lock when another process held the lock for
// longer than the wait.
var ErrLocked = errors.New("checkpoint locked by another simbulk")

// Lock takes the checkpoint's work lock, waiting up to wait for another
// holder to let go. The lock is a session's: a connection is set aside to
// hold it until unlock, and a process that dies loses it with its
// connection.
func (s *Store) Lock(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock checkpoint: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(workLock)).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("lock checkpoint: %w", err)
		}
		if ok {
			return func() {
				_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(workLock))
				conn.Release()
			}, nil
		}
		if time.Now().After(deadline) {
			conn.Release()
			return nil, ErrLocked
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
