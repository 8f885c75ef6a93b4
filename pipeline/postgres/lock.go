package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// lockSpace is the first key of simbulk's two-key advisory locks; the
// second is the hash of the lock's name.
const lockSpace = 0x73696d62 // "simb"

// ErrLocked is returned by Lock when another process held the lock for
// longer than the wait.
var ErrLocked = errors.New("checkpoint locked by another simbulk")

// Lock takes the named advisory lock of the checkpoint (one per name:
// "setup" while a run is found, created and loaded; "reconcile RUN" while
// a run is reconciled), waiting up to wait for another holder to let go;
// a negative wait waits as long as ctx allows. The lock is a session's: a
// connection is set aside to hold it until unlock, and a process that dies
// loses it with its connection.
func (s *Store) Lock(ctx context.Context, name string, wait time.Duration) (unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock checkpoint: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", int32(lockSpace), name).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("lock checkpoint: %w", err)
		}
		if ok {
			return func() {
				_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, hashtext($2))", int32(lockSpace), name)
				conn.Release()
			}, nil
		}
		if wait >= 0 && time.Now().After(deadline) {
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
