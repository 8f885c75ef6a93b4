// Package thingspace provisions eUICC devices through Verizon ThingSpace
// M2M: a client that activates devices in batches and learns completion by
// callback or by polling, and a simulator of the same API for tests, demos
// and `simbulk sim serve`.
//
// # Authentication
//
// Two layers, as the real service does it. An OAuth2 client-credentials
// token from POST /api/ts/v1/oauth2/token (Basic key:secret) is sent as
// Authorization: Bearer; a session token from POST /api/m2m/v1/session/login
// is sent as VZ-M2M-Token. Sessions die after 20 idle minutes: the client
// renews a session it has left idle that long before using it, and on a 401
// from an M2M call it logs in again once (and fetches a new bearer token
// when the login itself is refused with 401).
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
// later answers by the order's EID (or ICCID when there is no EID).
// Orders without account_name use Config.AccountName. The CLI column is not
// sent: ThingSpace assigns the MDN at activation.
//
// # Completion
//
// With Config.Callback set, Start runs an HTTP listener and registers it as
// the account's DeviceProfileService callback. ThingSpace retries a
// callback up to 4 times, so deliveries arrive twice, late, out of order,
// or before Submit has even returned: each one is checked (username and
// password from the body, compared in constant time), stored in an inbox
// keyed by requestId and device, and answered 200 at once; repeats are
// ignored. Check only reads the inbox, and when no callback has come
// CallbackGrace after the first Check of a row it polls instead, so a lost
// callback never strands a row. Accounts other than Config.AccountName are
// registered on first use. Without Config.Callback, Check polls. The
// listener takes POSTs on any path, so PublicURL may carry whatever path a
// proxy in front of it needs.
//
// Check returns Accepted (with Err set, for the caller's logs and backoff)
// when it could not get an answer: the activation may still complete, and
// only the provider's verdict fails a row. Check with an empty handle (a
// row recovered after a crash, which has no requestId) reads the device
// state from the list call instead.
//
// # Assumptions where the public docs are silent
//
// The request status call GET /api/m2m/v2/accounts/{accountName}/requests/
// {requestId}/status is assumed to answer
//
//	{"requestId":"…","accountName":"…","status":"Pending|Success|Failed|PartialSuccess",
//	 "devices":[{"deviceIds":[{"kind":"eid","id":"…"},…],"status":"Pending|Success|Failed",
//	             "state":"active","errorCode":"…","errorMessage":"…"}]}
//
// and the device list call POST /api/m2m/v1/devices/actions/list with
// {"accountName":"…","deviceId":{"kind":"eid","id":"…"}} to answer
//
//	{"hasMoreData":false,"devices":[{"accountName":"…","deviceIds":[…],
//	  "state":"active|pending activation|deactive|suspend",
//	  "carrierInformations":[{"carrierName":"…","servicePlan":"…","state":"…"}],…}]}
//
// where an empty list (or a 404) means the provider does not know the
// device; the client reads the device-level state and falls back to the
// first carrierInformations state. The callback table calls deviceResponse
// and deviceProfileResponse arrays while the example shows objects, and
// callbackCount a string while the example shows a number: the listener
// accepts either form. errorCode is documented as the 3-digit HTTP code
// but is taken as whatever string (or number) the service sends.
//
// # Simulator
//
// Simulator serves the same paths with state: it accepts the Sim*
// credentials by default, validates activate requests as the docs describe
// (answering 400 in the error envelope), completes them AsyncDelay later,
// answers the status and list calls above, and pushes one callback per
// device to the registered URL with ThingSpace's 4 attempts, plus the
// fault knobs of SimOptions (late, jittered, duplicated and lost
// callbacks). Forget, SetState, Alter, FailActivation and Preload change
// its records for drift and failure tests.
//
// Errors come as {errorCode, errorMessage}; Error.Code and Error.Message
// carry them unchanged, except that any configured secret the service
// might echo is redacted.
package thingspace
