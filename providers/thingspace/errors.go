package thingspace

import (
	"encoding/json"
	"strings"

	"github.com/simbulk/simbulk/providers"
)

// statusError classifies a non-success answer, keeping the service's
// errorCode and errorMessage (with any of our secrets it might echo
// removed). Bodies that are not the envelope fall back to the shared codes.
func (c *Client) statusError(resp *providers.Response) *providers.Error {
	var env errorEnvelope
	_ = json.Unmarshal(resp.Body, &env) // not the envelope: shared codes below
	return providers.StatusError(resp.Status, resp.Header, c.redact(string(env.ErrorCode)), c.redact(env.ErrorMessage), c.cfg.MaxRetryAfter)
}

// malformed reports a success answer we could not read.
func malformed(resp *providers.Response, what string, err error) *providers.Error {
	return providers.MalformedError(resp.Status, what, err)
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
