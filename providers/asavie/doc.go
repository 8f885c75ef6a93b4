// Package asavie provisions SIMs through the Asavie PassBridge provisioning
// API and simulates that API for tests and the offline demo.
//
// One SIM per request: POST /v1/accounts/{foreignaccountkey}/hardware/sims
// with a SIMCard body, answered 202 with a StatusUrl that Check polls until
// the request's Status is "complete" (or "failed"). Lookup is
// GET /v1/accounts/{key}/hardware/sims/{cli}. Authentication is an OAuth2
// client-credentials grant at POST /v1/authtoken; the bearer token is
// cached, renewed before expiry, and fetched again once on a 401.
//
// Quirks handled here:
//
//   - Every answer is an envelope {Success, Code, ErrorCode, ErrorSubCode,
//     ErrorDescription, StatusUrl, Meta, Data}, and the envelope is
//     authoritative: HTTP 200 with {"Success":false,"Code":409} is a
//     conflict, with Code 500 a retryable server error, with Code 401 a
//     refused token (renewed once, as for HTTP 401). Error.HTTPStatus holds
//     the envelope's Code. A JSON body without Success (a proxy's or rate
//     limiter's) is classified by HTTP status.
//   - The StatusUrl is relative and already URL-encoded
//     ("/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%297700900123/status/…"):
//     it is appended to the base URL byte for byte, never encoded again.
//     Paths the client builds escape the account and CLI the same way.
//   - A CLI that exists (409, as HTTP status or envelope Code) is looked up:
//     the same SIM (same SIMNumber when the row has one) means the row was
//     provisioned before and succeeds with note "already existed"; a
//     different one is a CodeConflict naming the difference.
//   - SIM states arrive as numbers (JSON samples) or names (XML samples);
//     both are read. The MSISDN CLI form "(+44)7700900123" is made by
//     ingest; this package sends Order.CLI as it stands.
//   - A status URL Asavie no longer knows (404) is answered by looking the
//     SIM up, so a resume days later still learns completion.
package asavie
