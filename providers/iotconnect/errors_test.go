package iotconnect

import (
	"strings"
	"testing"

	"github.com/simbulk/simbulk/ingest/checkdigit"
)

func TestParseEnvelope(t *testing.T) {
	long := strings.Repeat("x", 2*maxMessage)
	tests := []struct {
		name      string
		body      string
		code, msg string
	}{
		{"full", `{"name":"BadRequest","message":"Request validation failed","errors":[{"message":"eid must match ^[0-9]{32}$","errorCode":"INVALID_FORMAT","path":"eid"}]}`,
			"INVALID_FORMAT", "Request validation failed: eid must match ^[0-9]{32}$ (path eid)"},
		{"several errors", `{"name":"BadRequest","message":"m","errors":[{"errorCode":"A","path":"eid"},{"errorCode":"B"},{"errorCode":"C"}]}`,
			"A", "m (path eid) and 2 more errors"},
		{"one more error", `{"message":"m","errors":[{"errorCode":"A"},{"errorCode":"B"}]}`, "A", "m and 1 more error"},
		{"name only", `{"name":"Forbidden","message":"You are not allowed to access the requested resource."}`,
			"Forbidden", "You are not allowed to access the requested resource."},
		{"error without code", `{"name":"BadRequest","message":"m","errors":[{"message":"m"}]}`, "BadRequest", "m"},
		{"message from error", `{"errors":[{"message":"only here","errorCode":"X"}]}`, "X", "only here"},
		{"empty object", `{}`, "", ""},
		{"not json", `<html>502 Bad Gateway</html>`, "", ""},
		{"empty", ``, "", ""},
		{"wrong types", `{"name":1,"errors":"no"}`, "", ""},
		{"null errors", `{"name":"N","message":"m","errors":null}`, "N", "m"},
		{"long message", `{"name":"N","message":"` + long + `"}`, "N", long[:maxMessage] + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := parseEnvelope([]byte(tc.body))
			if code != tc.code || msg != tc.msg {
				t.Errorf("got (%q, %q), want (%q, %q)", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestSubscriptionIDPattern(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"8546U5LX6B24P3AZ8X", true}, // the documents' example
		{"97ABCDEFGHJKLMNPQR", true},
		{"58ABCDEFGHJKLMNPQR", false}, // admitted by the documents' buggy class
		{"9,ABCDEFGHJKLMNPQR", false},
		{",,ABCDEFGHJKLMNPQR", false},
		{"85ABCDEFGHJKLMNPQI", false}, // I is not in the alphabet
		{"85ABCDEFGHJKLMNPQ0", false},
		{"85ABCDEFGHJKLMNPQ", false},
		{"85ABCDEFGHJKLMNPQRS", false},
		{"85abcdefghjkmnpqrs", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := ValidSubscriptionID(tc.id); got != tc.want {
			t.Errorf("ValidSubscriptionID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestLastSegment(t *testing.T) {
	for in, want := range map[string]string{
		"/iot-connect/subscriptions/v1/iot-subscriptions/8546U5LX6B24P3AZ8X":          "8546U5LX6B24P3AZ8X",
		"https://h/iot-connect/subscriptions/v1/iot-subscriptions/97ABCDEFGHJKLMNPQR": "97ABCDEFGHJKLMNPQR",
		"/x/y?include=a": "y",
		"/x/a%2Fb":       "a/b",
		"":               "",
		"/":              "",
	} {
		if got := lastSegment(in); got != want {
			t.Errorf("lastSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLuhnDigit(t *testing.T) {
	// Checked independently: with the digit appended, the Luhn sum of the
	// whole number is a multiple of 10.
	for _, payload := range []string{"8947000123456789012", "8901260882310000000", "7992739871"} {
		full := payload + string(checkdigit.LuhnDigit(payload))
		sum := 0
		for i := range len(full) {
			d := int(full[len(full)-1-i] - '0')
			if i%2 == 1 {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		if sum%10 != 0 {
			t.Errorf("%s fails Luhn", full)
		}
	}
	if got := checkdigit.LuhnDigit("7992739871"); got != '3' {
		t.Errorf("LuhnDigit(7992739871) = %c, want 3", got)
	}
}
