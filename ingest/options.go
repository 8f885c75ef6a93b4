package ingest

// ProviderRules are per-provider strictness settings (config: providers.<name>).
type ProviderRules struct {
	// Checksum decides what a wrong check digit (EID MOD 97-10, ICCID and
	// IMEI Luhn) is: SeverityError (the default) makes the row invalid,
	// SeverityWarning reports it and lets the row through. Some providers'
	// own test data fails the checks.
	Checksum Severity
	// AllowICCIDWithoutCheckDigit accepts 18-19 digit ICCIDs that omit the
	// Luhn digit, as some SIM vendors' files do.
	AllowICCIDWithoutCheckDigit bool
}

// ValidateOptions configure a Validator.
type ValidateOptions struct {
	// Provider, when set (--provider), is the provider of every row; a
	// provider column, if present, must then agree or be empty.
	Provider string
	// Defaults fill provider fields that a row leaves empty:
	// provider -> canonical column -> value (config: providers.<name>.defaults).
	Defaults map[string]map[string]string
	// Rules are per-provider strictness settings; a missing entry means the
	// zero value with Checksum = SeverityError.
	Rules map[string]ProviderRules
}

// Summary counts what a validation pass saw.
type Summary struct {
	Rows    int `json:"rows"`
	Valid   int `json:"valid"`
	Invalid int `json:"invalid"`
}
