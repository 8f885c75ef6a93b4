// Package asavie provisions SIMs through the Asavie PassBridge provisioning
// API and simulates that API for tests and the offline demo. Its Manifest
// holds the manifest rules of an Asavie row: a CLI in the SIMCard.CLI
// form, under an account.
//
// One SIM per request: POST /v1/accounts/{foreignaccountkey}/hardware/sims
// with a SIMCard body, answered 202 with a StatusUrl that Check polls until
// the request's Status is "complete" (or "failed"). Lookup is
// GET /v1/accounts/{key}/hardware/sims/{cli}. Authentication is an OAuth2
// client-credentials grant at POST /v1/authtoken; the bearer token is
// cached, renewed before expiry, and fetched again once on a 401.
//
// # Public sources
//
// Everything this package knows of the wire comes from two public sources,
// which disagree in places; the client accepts both readings.
//
//   - The reference page "POST v1/accounts/{foreignaccountkey}/hardware/sims"
//     of the Asavie PassBridge API help: the SIMCard model and its enums,
//     the CLI regex, the envelope PBPRReturnOfSIMCard {Data, Success, Meta,
//     Code, ErrorCode, ErrorSubCode, ErrorDescription, StatusUrl,
//     ContinuationToken}, "a failure result with a 409 error code" for a
//     duplicate CLI, and that a created SIM's "Status property will be set
//     as 'complete'". Its JSON sample is generated from the model: Meta is
//     an object (a Dictionary of string), every number a placeholder.
//   - Replies captured from the live API in the comments of
//     github.com/GraphDefined/AsavieAPI (AsavieAPIClient.cs, parsed by
//     APIResult.cs), July 2018: every envelope carries all its fields,
//     "Meta": "", "ErrorDescription": "", "ContinuationToken": "" and
//     "StatusUrl": null when there is none; a SIMCard writes unset fields
//     as null ("Description": null, "ForeignAttributes": null, "Hints":
//     null); and the one captured command answer (a state change, HTTP 200
//     with Code 202 and the SIMCard in Data) carries a StatusUrl of the form
//     /v1/accounts/{key}/hardware/sims/{cli}/status?cmdid=<opaque,
//     percent-encoded>.
//
// # What the client accepts
//
//   - Every answer is read as the envelope, and the envelope is
//     authoritative: HTTP 200 with {"Success":false,"Code":500} is a
//     retryable server error, with Code 401 a refused token (renewed once,
//     as for HTTP 401). Error.HTTPStatus holds the envelope's Code. A JSON
//     body without Success (a proxy's or rate limiter's) is classified by
//     HTTP status.
//   - Meta may be an object (the reference page), a string, empty or not
//     (the captures), or null; only an object's RequestId is used. Null or
//     absent ErrorDescription, StatusUrl and ContinuationToken, and null
//     for any SIMCard field, read as unset.
//   - The StatusUrl is relative and already URL-encoded: it is appended to
//     the base URL byte for byte, never encoded again (that would turn %2F
//     in a cmdid into %252F). An absolute StatusUrl is followed only on the
//     base URL's own host, so the bearer token goes nowhere else. Paths the
//     client builds escape the account and CLI as Uri.EscapeDataString does.
//   - Both StatusUrl forms are recognised: .../status?cmdid=... (captured)
//     and .../status/{id}. A status URL Asavie no longer knows (404) is
//     answered by looking the SIM up by CLI, so a resume days later still
//     learns completion.
//   - A CLI that exists is recognised by a 409 in any of three places: the
//     HTTP status, the envelope's Code, or its ErrorCode alone (for example
//     HTTP 400, Code 400, ErrorCode 409). It is looked up: the same SIM
//     (same SIMNumber when the row has one) means the row was provisioned
//     before and succeeds with note "already existed"; a different one is a
//     CodeConflict naming the difference.
//   - SIM states arrive as numbers (JSON samples) or names (XML samples);
//     both are read. The MSISDN CLI form "(+44)7700900123" is made by
//     manifest validation, as this package's Manifest asks; the client
//     sends Order.CLI as it stands.
//   - Credentials: a token endpoint that refuses the client (400/401/403)
//     is providers.CodeCredentials, and the shared TokenCache never asks
//     again in this process. A 401 (HTTP or envelope Code) that persists
//     after one re-authentication means a token fetched a moment ago was
//     refused: CodeCredentials too, not retryable, not applied. A 403 is
//     providers.CodeAuth: one resource refused, other rows may succeed.
//     No error message carries a secret.
//
// # What is still a guess
//
// The status resource a StatusUrl names is NOT documented anywhere public:
// the reference page says only that the Status becomes "complete", and the
// captures never poll a StatusUrl. The client reads two shapes:
//
//   - Data.Status "pending", "complete" or "failed" (a few obvious other
//     spellings are folded onto these), with Data.SIMCard the SIM as the
//     request left it; an envelope failure with Status "failed" is the
//     request's final failure;
//   - a Data that is a SIMCard, whose ActorStatus (stable 0, pending 1,
//     stalled 10, documented on the reference page) says whether creation
//     has finished, as in the captured command answer.
//
// This reading was checked only against those two public sources and
// against the simulator, which was written from the same reading; it has
// not been seen against the live API. So an answer the client cannot read
// (an unknown Status, a Data of neither shape, a body that is not an
// envelope) is never taken for "still pending": it is a retryable
// providers.CodeMalformed whose Message quotes Asavie's words (the first
// 200 bytes), not maybe-applied since a GET changes nothing. The pipeline
// bounds how many such answers a row may get and then fails it as
// unreadable_answer. Also guessed: where a duplicate CLI's 409 sits (hence
// all three places are read), Asavie's error codes and wording, and that
// status records expire.
//
// # The simulator's forms
//
// SimOptions.Forms picks which public form the simulator answers in; the
// conformance suite runs the client against both.
//
//   - simkit.Documented (the default) is what the live API was captured
//     sending: every envelope field present, Meta "", StatusUrl null when
//     none, StatusUrls .../sims/{cli}/status?cmdid=<opaque base64,
//     percent-encoded>, unset SIMCard fields null; a duplicate CLI is
//     answered HTTP 200 with {"Success":false,"Code":409}.
//   - simkit.Alternate is the reference page's sample: Meta an object
//     ({"RequestId": "..."}), StatusUrls .../status/{id}, unset fields
//     left out; a duplicate CLI is answered with the 409 in ErrorCode only
//     (HTTP 400, Code 400).
//
// Both StatusUrl forms are served whatever the form. The status resource
// the simulator writes is the guessed shape above in both forms.
//
// testdata holds golden answers (txtar, read by providertest.Fixtures),
// each naming its source and whether it is captured, the reference
// sample, or derived (simbulk's reading); TestFixtures serves each to the
// real client.
package asavie
