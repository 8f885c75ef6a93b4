package iotconnect

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

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
// provider's own code and message; for 401 (which the Caller has already
// retried once with a fresh token) and for the retryable statuses the code
// is simbulk's, so the pipeline can act on it without knowing IoT Connect,
// and the provider's words stay in the message.
func (c *Client) statusError(resp *providers.Response) *providers.Error {
	code, msg := parseEnvelope(resp.Body)
	msg = c.scrub(msg)
	standard := resp.Status == http.StatusUnauthorized || providers.RetryableStatus(resp.Status)
	if standard && code != "" {
		if msg == "" {
			msg = code
		} else {
			msg = code + ": " + msg
		}
		code = ""
	}
	e := providers.StatusError(resp.Status, resp.Header, code, msg, c.maxRetryAfter)
	if resp.Status == http.StatusUnauthorized {
		e.Code = providers.CodeAuth
	}
	return e
}

// scrub removes the client secret should a server ever echo it back: no
// secret may reach an Outcome or a log line.
func (c *Client) scrub(s string) string {
	if c.secret != "" && strings.Contains(s, c.secret) {
		s = strings.ReplaceAll(s, c.secret, "[redacted]")
	}
	return s
}
