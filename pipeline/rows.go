package pipeline

import "time"

// RowRecord is one manifest row as the checkpoint holds it.
type RowRecord struct {
	RunID         string
	Row           int
	Provider      string
	EID           string
	ICCID         string
	CLI           string
	IMEI          string
	Fields        map[string]string
	Cells         []string
	State         State
	Attempts      int
	NextAttemptAt time.Time
	MustLookup    bool
	Handle        string
	AcceptedAt    time.Time
	Result        map[string]string
	ErrorCode     string
	ErrorMessage  string
	Retryable     bool
}

// Doubts holds the identifiers (by provider) whose request may have
// reached the provider in a run that has not settled them: left in flight
// by a crash, accepted and not complete, or waiting for a lookup. A row
// with one of them is looked up before anything is sent.
type Doubts map[string]struct{}

func doubtKey(provider, kind, id string) string { return provider + "\x00" + kind + "\x00" + id }

// IdentifierKinds name the identifiers a row is known by, in the order of
// Identifiers.
var IdentifierKinds = [3]string{"eid", "cli", "iccid"}

// Identifiers are a row's identifiers in the order of IdentifierKinds.
func Identifiers(eid, cli, iccid string) [3]string { return [3]string{eid, cli, iccid} }

// Add records that provider's identifier id of the given kind (one of
// IdentifierKinds) is in doubt.
func (d Doubts) Add(provider, kind, id string) { d[doubtKey(provider, kind, id)] = struct{}{} }

// Has reports whether any identifier of r is in doubt.
func (d Doubts) Has(r RowRecord) bool {
	if len(d) == 0 {
		return false
	}
	for i, v := range Identifiers(r.EID, r.CLI, r.ICCID) {
		if v != "" {
			if _, ok := d[doubtKey(r.Provider, IdentifierKinds[i], v)]; ok {
				return true
			}
		}
	}
	return false
}
