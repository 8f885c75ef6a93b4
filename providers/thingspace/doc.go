// Package thingspace provisions eUICC devices through Verizon ThingSpace
// M2M: a client that activates devices in batches and learns completion by
// callback or by polling, and a simulator of the same API for tests, demos
// and `simbulk sim serve`. Its Manifest holds the manifest rules of a
// ThingSpace row (EID, account name, MDN ZIP code, and the primary place
// of use, all or nothing), so that one bad row never sinks the 99 others
// of its activate request.
//
// # Authentication
//
// Two layers, as the real service does it. An OAuth2 client-credentials
// token from POST /api/ts/v1/oauth2/token (Basic key:secret) is sent as
// Authorization: Bearer; a session token from POST /api/m2m/v1/session/login
// is sent as VZ-M2M-Token. Every call carries Content-Type:
// application/json, which the reference pages list as required on GETs as
// well. Sessions die after 20 idle minutes: the client renews a session it
// has left idle that long before using it, on a 401 from an M2M call it
// logs in again once (and fetches a new bearer token when the login itself
// is refused with 401), and on an answer of any other status whose
// errorCode or errorMessage says the session (or token) expired or is
// invalid it drops it and sends once more, never in a loop: the docs advise
// logging in again on such an error but give no status for it.
//
// "ThingSpace will lock a contact record after 5 consecutive failed log in
// attempts" (API reference of POST /api/m2m/v1/session/login), and only Verizon support
// unlocks it. A login still refused after that one bearer refresh (any
// non-retryable answer: 400, 401, 403, ...) becomes
// providers.CodeCredentials, not retryable, and the session remembers it:
// every later call fails at once with the same error and no new login, so
// one process makes at most 2 failed logins. A token endpoint refusal is
// remembered the same way by providers.TokenCache. 429, 5xx and timeouts
// at login are not failed logins and stay retryable.
//
// # Provisioning
//
// POST /api/m2m/v1/devices/profile/actions/activate carries up to 100
// devices. The request-level fields (accountName, servicePlan, carrierName,
// mdnZipCode, carrierIpPoolName, primaryPlaceOfUse) apply to every device
// in it, so Submit groups orders by those fields and sends one request per
// group and per 100 devices: a batch that mixes accounts becomes several
// requests. A 400 refuses a whole request, so the client checks the
// per-device identifiers (EID 32 digits, ICCID and IMEI digits) itself and
// fails a bad row alone instead of letting it sink 99 good ones. The answer
// is a requestId, which is the Outcome's Handle; the device is found in
// later answers by any of its ids (EID, ICCID or IMEI). Orders without
// account_name use Config.AccountName. The CLI column is not sent:
// ThingSpace assigns the MDN at activation.
//
// # Completion
//
// With Config.Callback set, Start runs an HTTP listener and registers it as
// the account's DeviceProfileService callback. ThingSpace delivers only to
// ports 80, 443, 9001-9006, 50551-50559 and 28200-28220 (API reference
// "Register Callback Listener"), so New refuses a public_url (or, without
// one, a listen address) on any other port. A loopback address is exempt:
// ThingSpace cannot reach it, so only a local simulator delivers there
// (tests, --simulate, sim serve). ThingSpace retries an undelivered
// callback 3 times, 5 minutes apart (maxCallbackThreshold 4), so
// deliveries arrive twice, late, out of order, or before Submit has even
// returned: each one is checked (the token in its URL, then the username
// and password from the body; see below), stored in an inbox keyed by requestId and
// device, and answered 200 at once; repeats are ignored. A slow device's
// first callback may carry status WARNING: it keeps the row pending and is
// held as progress, which the later SUCCESS or FAILED delivery replaces
// (only a final result makes later deliveries repeats). Check only reads
// the inbox, and when no callback has come CallbackGrace (default 6
// minutes, past the 5-minute retry gap) after the first Check of a row it
// polls instead, so a lost callback never strands a row. Accounts other
// than Config.AccountName are registered on first use. Without
// Config.Callback, Check polls.
//
// With several hosts on one run, the callback reaches one host while the
// row may be followed on another: given a providers.CallbackStore
// (ShareCallbacks; the shared PostgreSQL checkpoint is one), the listener
// keeps each final result there too, without the delivery's username and
// password, and Check looks there when its own inbox has nothing (shared.go).
//
// # Callback listener: what strangers cannot do
//
// ThingSpace puts the registered username and password in the body of each
// delivery, so on their own they can only be checked after the body is
// read: an audit held 9.4 GB with 8,000 connections each sending 1 MB
// without credentials. The registered URL therefore carries a secret
// outside the body: PublicURL (or http://<bound address>/callbacks) plus
// "/" and a token, the first 32 hex digits of HMAC-SHA256(key: the
// callback password, message: "simbulk-callback|" + account name). It is
// derived, not drawn, so a restarted simbulk takes the deliveries
// ThingSpace retries (for 15 minutes) to the URL registered before the
// crash; it differs per account and changes with the password. The token
// is never logged: CallbackURLForLog gives the URL with its first 4
// characters only, and service errors that echo it are redacted. The
// listener takes tokens of Config.AccountName and of every account the
// client has submitted or checked a row of; a delivery for an account
// not yet seen after a restart is refused and retried by ThingSpace.
//
// Every request is refused from its request line and headers alone,
// without reading its body, when its path does not end with a known
// token (404, and the connection is cut at once: a proxy may add any
// prefix, the token must be the last segment), when it is not a POST
// (405), or when it declares a Content-Length over MaxCallbackBody (256
// KiB; a delivery is about 2 KB) (413). Refusals close the connection
// (Connection: close) without draining the body. A remote IP may have
// MaxCallbackPerClient (16) deliveries being read at once; one more waits
// up to a second for a slot, then gets 429. Then the body is read, capped
// (a chunked body is cut at the cap: 413), and the username and password
// in it are checked in constant time (401). The server allows
// MaxCallbackConns (256) connections at once (more wait in the accept
// queue), headers of MaxCallbackHeader (16 KiB), 5 seconds to send them,
// 15 for the whole request, and keeps an idle connection a minute.
// Nothing is logged per refusal, so a flood cannot flood the log:
// CallbackRejections counts them by reason (bad_path, bad_method,
// too_large, too_many, bad_credentials, malformed) for the run's summary.
//
// Check returns Accepted (with Err set, for the caller's logs and backoff)
// when it could not get an answer (no connection, timeouts, 429, 5xx): the
// request itself is not in doubt and the pipeline bounds the wait. An
// answer it could not read (malformed JSON, a status or state word nobody
// documented) is not an eternal "pending": Check fails the row with a
// retryable CodeMalformed error quoting the provider's words (truncated)
// and MaybeApplied set, which the pipeline bounds and then reports as
// unreadable_answer, looking the device up before any resend. Check with
// an empty handle (a row recovered after a crash, which has no requestId)
// reads the device state from the list call instead.
//
// # Public sources and what the client accepts
//
// Request status, GET /api/m2m/v2/accounts/{accountName}/requests/
// {requestId}/status: API reference "Get the Status of an Asynchronous
// Request (for eUICC)",
// https://thingspace.verizon.com/documentation/apis/connectivity-management/api-reference/asynch-request-status.html,
// documents
//
//	{"requestId":"…","status":"Success|Failed|Pending",
//	 "subRequests":[{"ids":[{"id":"<ICCID>","kind":"iccid"}],"status":"Success"},…]}
//
// while Verizon's generated SDK (github.com/sdks-io/verizon-apis-python-sdk,
// verizon/models/status_response.py, subrequest.py, gio_device_id.py)
// spells it subrequests, with ids one {id, kind} object. The client reads
// subRequests and subrequests, ids as an array or an object, and the
// devices[].deviceIds form it once assumed (harmless). A device matches by
// any of its ids. A sub-request Success succeeds the row, Failed fails it
// (code activation_failed: sub-requests carry no code), Pending keeps it.
// The page also says "Bulk operation: Not Supported": a request of many
// devices may come back with subRequests empty or partial. So when the
// request is finished (any status but Pending) and the device is not
// listed, the client asks the device list before deciding: active
// succeeds, pre-active stays accepted, not found fails retryable with
// MaybeApplied (look before resending), suspended or deactivated fails.
//
// Device list, POST /api/m2m/v1/devices/actions/list: the SDK's
// AccountDeviceListRequest names one device as deviceId {id, kind} next to
// accountName (filter is for other searches), which is what the client
// sends: the EID, else the ICCID, else the IMEI. The SDK's ThingspaceDevice
// has no device-level state; the state is carrierInformations[].state
// (CarrierInformation: "Activate, Suspend, Deactive, Pre-active"), while
// other examples show lower-case "active". The client reads a device-level
// state if present, else the first carrierInformations state, case and
// dashes aside: active and activate are Active; pre-active, preactive and
// pending… are Pending; suspend and deactive are found but not active. An
// empty list (or a 404) means the provider does not know the device.
//
// Callbacks: API reference "Activate a Device (for eUICC)" shows
// deviceResponse and deviceProfileResponse as objects and callbackCount as
// a number in its example, and calls them arrays and a string in its
// parameter table: the listener accepts either form.
//
// Errors: the M2M service answers {"errorCode":"…","errorMessage":"…"}
// (page "Synchronous Error Messages", e.g.
// UnifiedWebService.REQUEST_FAILED.AccountNotFound; the activate page
// calls errorCode a 3-digit code, so it is read as a string or a number);
// the API gateway answers refused bearer tokens as
// {"fault":{"code":"…","message":"…","description":"…"}}. Error.Code and
// Error.Message carry either unchanged, except that any configured secret
// the service might echo is redacted.
//
// Still guesses, checked only against the sources above and the golden
// fixtures in testdata (each names its source): the answer to a refused
// login (taken as any non-retryable status, body in the errorCode
// envelope); the errorCode or words of an expired session (matched
// loosely: "session" or "token" with "expired" or "invalid"); the gateway
// fault's code and words (only its shape is relied on); the body of a
// WARNING callback (taken as the example with another status); the list
// answer's hasMoreData/devices envelope; and request-level words other
// than Success, Failed and Pending (PartialSuccess is read as finished,
// InProgress and the like as pending; anything else is unreadable).
//
// # Simulator
//
// Simulator serves the same paths with state: it accepts the Sim*
// credentials by default, validates activate requests as the docs describe
// (answering 400 in the error envelope), refuses an M2M call without
// Content-Type: application/json (415), completes requests AsyncDelay
// later, answers the status and list calls, and pushes one callback per
// device to the registered URL with ThingSpace's 4 attempts, plus the
// fault knobs of SimOptions (late, jittered, duplicated and lost
// callbacks; BulkStatusUnlisted for status answers that list no device).
// Forget, SetState, Alter, FailActivation and Preload change its records
// for drift and failure tests.
//
// SimOptions.Forms picks the wire form. simkit.Documented (the default)
// answers as the reference pages show: the status call's subRequests with
// ids an array naming the device by ICCID only; the device list with the
// state only in carrierInformations[].state, in the SDK's documented words
// Activate, Pre-active, Suspend, Deactive; callbacks as the activate
// page's example; refused bearer tokens in the gateway's fault envelope.
// simkit.Alternate answers in the SDK's shapes: subrequests with ids one
// object carrying the EID; lower-case states (active, pre-active) with a
// device-level state as well; deviceResponse and deviceProfileResponse as
// arrays and callbackCount as a string; and, for requests that take time,
// a first WARNING callback halfway before the final one.
package thingspace
