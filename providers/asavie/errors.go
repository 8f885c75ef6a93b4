package asavie

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/simbulk/simbulk/providers"
)

// answer is a response read as an envelope, with the status that counts.
type answer struct {
	reply
	// status is the envelope's Code where it gave a valid HTTP status,
	// otherwise the HTTP status: Asavie's Code is "the http code of the API
	// call", and it is authoritative even when the transport said 200.
	status int
	// envelope is false when the body was not an envelope at all.
	envelope bool
	// httpStatus is the transport's status, kept beside the envelope's.
	httpStatus int
}

// conflict reports whether the answer says "this CLI exists". The
// reference page only speaks of "a failure result with a 409 error code",
// which is read three ways: 409 as the HTTP status, as the envelope's Code
// ("the http code of the API call"), or as its ErrorCode ("the failure
// error code"), whatever the other two say.
func (a *answer) conflict() bool {
	return a.status == http.StatusConflict || a.httpStatus == http.StatusConflict ||
		(a.envelope && a.ErrorCode == http.StatusConflict)
}

// readAnswer classifies one HTTP answer. It returns the parsed envelope
// and, when the answer is not a success, the classified error. applied
// says whether the request could have changed something at Asavie (a POST)
// so that an unclear answer must be treated as maybe applied.
//
// A success needs all of: a 2xx transport status, Success true, a 2xx (or
// absent) Code and no ErrorCode. Everything else is a failure classified by
// the envelope's Code first, the HTTP status second.
func readAnswer(resp *providers.Response, what string, applied bool, maxRetryAfter time.Duration) (*answer, *providers.Error) {
	a := &answer{status: resp.Status, httpStatus: resp.Status}
	transportOK := resp.Status >= 200 && resp.Status < 300
	if err := json.Unmarshal(resp.Body, &a.reply); err != nil || a.Success == nil {
		if transportOK {
			if err == nil {
				err = errors.New("no Success field in the envelope")
			}
			e := malformed(resp.Status, what, err, resp.Body)
			e.MaybeApplied = e.MaybeApplied && applied
			return a, e
		}
		e := statusError(resp, a, maxRetryAfter, applied)
		return a, e
	}
	a.envelope = true
	if code := int(a.Code); code >= 100 && code <= 599 {
		a.status = code
	}
	if !transportOK && (a.status >= 200 && a.status < 300) {
		// The envelope claims success on a failed transport: believe the
		// failure, which is the safer reading.
		a.status = resp.Status
	}
	ok := *a.Success && a.status >= 200 && a.status < 300 && a.ErrorCode == 0
	if ok {
		return a, nil
	}
	return a, statusError(resp, a, maxRetryAfter, applied)
}

// statusError builds the classified error for a failed answer.
func statusError(resp *providers.Response, a *answer, maxRetryAfter time.Duration, applied bool) *providers.Error {
	status := a.status
	code, msg := "", ""
	if a.envelope {
		if a.ErrorCode != 0 {
			code = strconv.Itoa(int(a.ErrorCode))
		}
		msg = strings.TrimSpace(a.ErrorDescription)
		if a.ErrorSubCode != 0 {
			msg = strings.TrimSpace(fmt.Sprintf("%s (sub-code %d)", msg, a.ErrorSubCode))
		}
	}
	if status < 400 {
		// Success:false (or an ErrorCode) with no failing status: a refusal
		// Asavie did not grade; nothing suggests trying again will help.
		if code == "" {
			code = providers.CodeRejected
		}
		if msg == "" {
			msg = "Asavie answered Success:false without a description"
		}
		e := &providers.Error{Code: code, Message: msg, HTTPStatus: status}
		return withTransportNote(e, resp.Status)
	}
	e := providers.StatusError(status, resp.Header, code, msg, maxRetryAfter)
	switch status {
	case http.StatusUnauthorized:
		// send has already fetched a fresh token and been refused again:
		// it is simbulk's credentials Asavie will not take, and no row can
		// succeed until a person fixes them. Nothing was done.
		e.Code = providers.CodeCredentials
		e.Retryable, e.MaybeApplied, e.RetryAfter = false, false, 0
	case http.StatusForbidden:
		// A valid token not allowed this one resource (an account the
		// client may not touch): other rows may still succeed.
		e.Code = providers.CodeAuth
	}
	if !applied {
		e.MaybeApplied = false
	}
	return withTransportNote(e, resp.Status)
}

// malformed is MalformedError quoting the start of what Asavie said, so
// that a person reading the report sees the provider's own words.
func malformed(status int, what string, err error, said []byte) *providers.Error {
	e := providers.MalformedError(status, what, err)
	e.Message += "; Asavie said " + excerpt(said)
	return e
}

// maxExcerpt bounds how much of an answer an error message quotes.
const maxExcerpt = 200

// excerpt quotes at most maxExcerpt bytes of b, cut on a rune boundary.
func excerpt(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing (an empty body)"
	}
	if len(b) <= maxExcerpt {
		return strconv.Quote(string(b))
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + fmt.Sprintf(" (first %d of %d bytes)", cut, len(b))
}

// withTransportNote says so in the message when the envelope's Code and
// the HTTP status disagree, so a person reading the report is not misled.
func withTransportNote(e *providers.Error, httpStatus int) *providers.Error {
	if e.HTTPStatus != httpStatus {
		e.Message = fmt.Sprintf("%s [HTTP %d, envelope Code %d]", e.Message, httpStatus, e.HTTPStatus)
	}
	return e
}
