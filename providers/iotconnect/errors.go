package iotconnect

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/simbulk/simbulk/providers"
)

// Error codes of IoT Connect that the client acts on. The documents list
// the envelope but not its codes; these are the ones the simulator uses
// (see doc.go).
const (
	// CodeAlreadyRegistered answers a registration of an EID that is
	// registered already.
	CodeAlreadyRegistered = "EUICC_ALREADY_REGISTERED"
)

// maxMessage bounds how much of a provider's message reaches a report.
const maxMessage = 500

// parseEnvelope reads the documented error envelope. It returns the
// provider's code (the first errors[].errorCode, else name) and message
// (message, the first error's own message when it adds something, and the
// path it names). Anything unreadable gives empty strings: the HTTP status
// alone then classifies the answer.
func parseEnvelope(body []byte) (code, message string) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", ""
	}
	code = strings.TrimSpace(env.Name)
	message = strings.TrimSpace(env.Message)
	if len(env.Errors) > 0 {
		first := env.Errors[0]
		if c := strings.TrimSpace(first.ErrorCode); c != "" {
			code = c
		}
		if m := strings.TrimSpace(first.Message); m != "" && m != message {
			if message == "" {
				message = m
			} else {
				message += ": " + m
			}
		}
		if p := strings.TrimSpace(first.Path); p != "" {
			message += " (path " + p + ")"
		}
		if n := len(env.Errors) - 1; n > 0 {
			message += " and " + plural(n, "more error")
		}
	}
	if len(message) > maxMessage {
		message = message[:maxMessage] + "…"
	}
	return code, strings.TrimSpace(message)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// statusError classifies a non-2xx answer. Documented 4xx keep the
// provider's own code and message. For 401, 403 and the retryable statuses
// the code is simbulk's, so the pipeline can act on it without knowing IoT
// Connect, and the provider's words stay in the message:
//
//   - 401 reaches here only after the Caller fetched a fresh token and
//     was refused again: simbulk's credentials are not accepted, which no
//     retry mends (providers.CodeCredentials; the pipeline stops the lane).
//   - 403 refuses one resource (another organisation's domain, say), not
//     the credentials: providers.CodeAuth, for this row alone.
func (c *Client) statusError(resp *providers.Response) *providers.Error {
	code, msg := parseEnvelope(resp.Body)
	msg = c.scrub(msg)
	standard := resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden ||
		providers.RetryableStatus(resp.Status)
	if standard && code != "" {
		if msg == "" {
			msg = code
		} else {
			msg = code + ": " + msg
		}
		code = ""
	}
	e := providers.StatusError(resp.Status, resp.Header, code, msg, c.maxRetryAfter)
	switch resp.Status {
	case http.StatusUnauthorized:
		e.Code = providers.CodeCredentials
		e.Message = "a freshly fetched access token was refused too: " + e.Message
		e.Retryable, e.MaybeApplied = false, false
	case http.StatusForbidden:
		e.Code = providers.CodeAuth
	}
	return e
}

// maxQuote bounds how much of an unreadable answer an error quotes.
const maxQuote = 200

// unreadable reports a 2xx answer the client could not use (not JSON, or
// without what the call needs) as a retryable CodeMalformed error quoting
// the provider's words, so that the report shows what came back. A GET
// changes nothing at the provider, so it is never "maybe applied"; the
// pipeline bounds how often a row may be read in vain.
func (c *Client) unreadable(resp *providers.Response, what string, err error) *providers.Error {
	e := providers.MalformedError(resp.Status, what, err)
	e.Message += "; IoT Connect answered: " + c.quote(resp.Body)
	e.MaybeApplied = false
	return e
}

// quote is a body as a report may show it: secret-free, at most maxQuote
// bytes, with control characters and broken UTF-8 made visible as "?" so
// that a garbled answer cannot garble a log line.
func (c *Client) quote(body []byte) string {
	if len(body) == 0 {
		return "an empty body"
	}
	s := c.scrub(string(body))
	cut := len(s) > maxQuote
	if cut {
		s = s[:maxQuote]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if cut {
		s += "…"
	}
	return s
}

// scrub removes the client secret should a server ever echo it back: no
// secret may reach an Outcome or a log line.
func (c *Client) scrub(s string) string {
	if c.secret != "" && strings.Contains(s, c.secret) {
		s = strings.ReplaceAll(s, c.secret, "[redacted]")
	}
	return s
}
