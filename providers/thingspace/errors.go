package thingspace

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/simbulk/simbulk/providers"
)

// statusError classifies a non-success answer, keeping the service's own
// words with any of our secrets it might echo removed. Two envelopes are
// read: the M2M {errorCode, errorMessage} (page "Synchronous Error
// Messages") and the API gateway's {"fault":{code, message, description}}
// that refused bearer tokens come in. Bodies that are neither fall back to
// the shared codes.
func (c *Client) statusError(resp *providers.Response) *providers.Error {
	code, msg := envelopeOf(resp.Body)
	return providers.StatusError(resp.Status, resp.Header, c.redact(code), c.redact(msg), c.cfg.MaxRetryAfter)
}

// envelopeOf returns the code and message of either error envelope, ""
// when the body is neither.
func envelopeOf(body []byte) (code, msg string) {
	var env errorEnvelope
	if json.Unmarshal(body, &env) != nil {
		return "", ""
	}
	if env.ErrorCode != "" || env.ErrorMessage != "" || env.Fault == nil {
		return string(env.ErrorCode), env.ErrorMessage
	}
	f := env.Fault
	msg = f.Message
	if f.Description != "" && f.Description != f.Message {
		msg = strings.TrimSpace(msg + ": " + f.Description)
	}
	return string(f.Code), strings.TrimPrefix(msg, ": ")
}

// malformed reports a success answer we could not read.
func malformed(resp *providers.Response, what string, err error) *providers.Error {
	return providers.MalformedError(resp.Status, what, err)
}

// maxQuoted bounds how much of an unreadable answer an error quotes.
const maxQuoted = 200

// unreadable reports an answer about an accepted activation that could not
// be understood (bad JSON, a status word nobody documented), quoting the
// provider's words so a person can judge. It is retryable, since a later
// answer may read well, and MaybeApplied, since the activation was
// accepted: the pipeline bounds such rows and looks before resending.
func (c *Client) unreadable(resp *providers.Response, what string) *providers.Error {
	return &providers.Error{
		Code:         providers.CodeMalformed,
		Message:      fmt.Sprintf("unreadable %s: %s", what, c.quote(resp.Body)),
		HTTPStatus:   resp.Status,
		Retryable:    true,
		MaybeApplied: true,
	}
}

// quote is body as text for an error: redacted, cut to maxQuoted bytes on
// a rune boundary, quoted.
func (c *Client) quote(body []byte) string {
	s := c.redact(string(body))
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// redact removes every configured secret from text that came from the
// service, so an echoing error message cannot carry one into a report.
func (c *Client) redact(s string) string {
	if s == "" {
		return s
	}
	secrets := []string{c.cfg.Secret, c.cfg.Password}
	if cb := c.cfg.Callback; cb != nil {
		secrets = append(secrets, cb.Password)
		secrets = append(secrets, c.tokens.secrets()...) // the service may echo the registered URL
	}
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// copyError gives each outcome its own *Error, so a caller changing one
// row's error does not change its batch-mates'.
func copyError(e *providers.Error) *providers.Error {
	cp := *e
	return &cp
}
