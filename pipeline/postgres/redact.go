package postgres

import (
	"net/url"
	"regexp"
	"strings"
)

// kvPassword finds the password in a key=value connection string: quoted
// (with \' escapes) or up to the next space.
var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact is connString fit for a log or a message: the password, in a
// URL's user info, its password parameter or a key=value string, replaced
// by xxxxx.
func Redact(connString string) string {
	if IsConnString(connString) {
		u, err := url.Parse(connString)
		if err != nil {
			// Unparseable: nothing of it is safe to show.
			return "postgres://(unparseable connection string)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(connString, "${1}xxxxx")
}

// IsConnString reports whether s names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsConnString(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}
