package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// Worker is one process working on a run. The rows it claims are leased
// to it while its own lease lives; it renews the lease while it works,
// and when it stops renewing (killed, its host gone, cut off from the
// checkpoint) the lease expires and other workers take its rows over.
// Expiry is measured by the checkpoint's clock, the one clock every host
// shares.
type Worker struct {
	ID      string    `json:"id"` // unique: host, process id and a random part
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Joined  time.Time `json:"joined"`
	Expires time.Time `json:"expires"` // when the lease ends unless renewed
}

// NewWorker describes this process as a worker.
func NewWorker() Worker {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return Worker{ID: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])), Host: host, PID: os.Getpid()}
}

// ErrLeaseLost is returned to a worker whose lease expired before it was
// renewed: other workers may hold its rows now, so it must not send them.
var ErrLeaseLost = errors.New("worker lease expired")
