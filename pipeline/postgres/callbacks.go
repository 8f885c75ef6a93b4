package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simbulk/simbulk/providers"
)

var _ providers.CallbackStore = (*Store)(nil)

// keepCallbacks is how long a callback result stays: a row is checked
// within its completion timeout, hours at most, and a result nobody read
// in a day belongs to no run still working.
const keepCallbacks = 24 * time.Hour

// PutCallback keeps a provider's callback result under each of keys for
// the run's workers, wherever they are (providers.CallbackStore). The
// first result under a key stays: a repeat delivery changes nothing. Now
// and then it drops results older than keepCallbacks.
func (s *Store) PutCallback(ctx context.Context, provider string, keys []string, result []byte) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO callbacks (provider, key, result)
		SELECT $1, k, $3 FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING`, provider, keys, result)
	if err != nil {
		return fmt.Errorf("keep %s callback: %w", provider, err)
	}
	if last := s.callbacksSwept.Load(); time.Since(time.Unix(0, last)) > time.Minute && s.callbacksSwept.CompareAndSwap(last, time.Now().UnixNano()) {
		if _, err := s.pool.Exec(ctx, `DELETE FROM callbacks WHERE received_at < now() - $1::interval`, keepCallbacks); err != nil {
			return fmt.Errorf("drop old %s callbacks: %w", provider, err)
		}
	}
	return nil
}

// Callback returns the result kept under any of keys.
func (s *Store) Callback(ctx context.Context, provider string, keys []string) ([]byte, bool, error) {
	var result []byte
	err := s.pool.QueryRow(ctx, `SELECT result FROM callbacks WHERE provider = $1 AND key = ANY($2) LIMIT 1`, provider, keys).Scan(&result)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read %s callback: %w", provider, err)
	}
	return result, true, nil
}
