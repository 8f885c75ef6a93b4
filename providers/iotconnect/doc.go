// Package iotconnect provisions eSIMs through Telenor IoT Connect's
// Subscriptions API v1, and simulates that API for tests and the demo.
// Its Manifest holds the manifest rules of an IoT Connect row (EID, cmp,
// agreement, locale, domain_id), so a row the API would refuse is never
// sent.
//
// # Public sources
//
// Everything here is read from the Telenor IoT developer portal, API
// reference for IoT Connect subscriptions:
//
//   - Register eUICC, POST /iot-connect/subscriptions/v1/euiccs:
//     https://developer.iot.telenor.com/api_build/iot_connect/subscriptions/register-e-uicc
//     (body, 202 answer, the error envelope of 400/401/403/429/500).
//   - Get eUICC, GET /euiccs/{eid}?include=iotSubscription,profiles,connectivitySubscriptions:
//     https://developer.iot.telenor.com/api_build/iot_connect/subscriptions/get-e-uicc
//     (attributes eid, enabledProfile, bootstrapProfile; relationships
//     iotSubscription, profiles, connectivitySubscriptions, each {url,
//     attributes}; "If present, the attributes property will only contain
//     properties marked as required").
//   - Get subscription, GET /iot-subscriptions/{id}?include=…:
//     https://developer.iot.telenor.com/api_build/iot_connect/subscriptions/get-subscription
//     (the connectivity subscription schema with mode ACTIVE,
//     ACTIVE_NO_BILLING, DEACTIVATED, PAUSED, TERMINATED).
//
// testdata/*.txtar holds golden answers from these pages (verbatim where
// the page shows an example, built from the schema where it does not, each
// saying which), and fixtures_test.go runs the real client on each.
//
// # How a row is provisioned
//
// Submit registers the eUICC: POST /euiccs with {eid, cmp, domainId?,
// euiccAgreementId, localeId} taken from the order's EID and its cmp,
// domain_id, euicc_agreement_id and locale_id fields. IoT Connect answers
// 202 with the imsi, iccid and msisdn it assigned, but the IoT subscription
// is provisioned later ("this eventually results in an IoT subscription"),
// so the outcome is Accepted with the EID as Handle. Check GETs the eUICC
// once per call and reports Succeeded (imsi, iccid, msisdn, and
// subscription_id and mode where the answer has them) once the eUICC shows
// its IoT subscription with a connectivity subscription or profile that
// names an IMSI or ICCID. That is the evidence of completion: the mode is
// not waited for, since embedded attributes carry only required properties
// and whether mode is one of them is not visible; a client waiting for it
// might wait forever. Where the answer names the IoT subscription but
// embeds no identifier, Check reads the subscription (below) once.
//
// Lookup reads the same resource: 404 is not found, a registration without
// its IoT subscription is Found and Pending. Otherwise State is the
// connectivity subscription's mode, taken from the eUICC answer if
// embedded, else from GET /iot-subscriptions/{id}?include=connectivitySubscriptions.
// If neither answer names a mode, State is "" and Active is true: the
// subscription exists with its identifiers, which is all a completed
// registration is known to leave, and calling it inactive would report
// every such row as drift. Active otherwise means ACTIVE or
// ACTIVE_NO_BILLING. One eUICC per request: BatchSize is 1.
//
// Authentication is OAuth2 client credentials at Config.TokenURL; the
// bearer token is shared by all workers, fetched again a minute before it
// expires, and once more after a 401.
//
// # What the client accepts, and what it decided
//
//   - Whose eUICC: an EID registered already (400 EUICC_ALREADY_REGISTERED,
//     or 409, on POST; or found by Lookup) is this row's own registration,
//     sent before by an earlier run or by a retry whose answer was lost,
//     unless the provider shows otherwise: an enabledProfile other than the
//     row's ICCID (when the row has one; one side may omit the Luhn check
//     digit), or, only where an answer carries an euiccAgreementId at all,
//     another agreement than the row's. Absent fields never make a
//     conflict. A conflict fails the row permanently (providers.CodeConflict)
//     and is Lookup's Subscription.Conflict; anything else is reported as it
//     stands, with already_registered=true.
//   - Unreadable answers: a 2xx that is not JSON, or lacks what the call
//     needs (an eUICC answer without attributes or about another EID, an
//     IoT subscription named with neither id nor url, a subscription answer
//     without attributes), is a retryable providers.CodeMalformed error
//     whose message quotes up to 200 bytes of the answer (secret-free),
//     MaybeApplied only for the POST. Check returns it as Failed, never as
//     Accepted: "pending" would hide it, and the pipeline bounds how often a
//     row may be read in vain (unreadable_answer). A subscription that
//     simply is not there yet stays Accepted; the pipeline's completion
//     timeout bounds that wait.
//   - Errors: the envelope {name, message, errors[{message, errorCode,
//     path}]} has no documented codes. Documented 4xx keep the provider's
//     code (first errors[].errorCode, else name) and message (with the
//     first error's message and path). A 401 reaches the client only after
//     it fetched a fresh token and was refused again: that is
//     providers.CodeCredentials, not retryable, and the pipeline stops the
//     lane; a token endpoint refusing the client is the same code, and the
//     refusal is remembered so the endpoint is not asked again. A 403 is
//     providers.CodeAuth: one resource refused (another organisation's
//     domain), not the credentials. 429 and 5xx get simbulk's retryable
//     codes. For all of these the provider's words stay in the message.
//     A Check that cannot get an answer (429, 5xx, timeout) returns
//     Accepted with the error attached; a Check that finds the accepted
//     eUICC gone fails retryable, since registering again is safe.
//
// # What is still a guess, and what it was checked against
//
//   - EUICC_ALREADY_REGISTERED: the documents list no 409 and no error
//     codes; the simulator answers 400 with this errorCode (path eid), the
//     client accepts it or a 409. Checked against nothing but the
//     envelope's documented shape. The simulator's other codes (REQUIRED,
//     INVALID_FORMAT, INVALID_VALUE, INVALID_BODY, INVALID_TOKEN,
//     EUICC_NOT_FOUND, SUBSCRIPTION_NOT_FOUND) are guesses of the same kind.
//   - Which embedded properties are "required": not visible on the pages.
//     The documented form assumes the fewest: iotSubscription {id},
//     profiles {iccid, profileType} (what get-profile marks required),
//     connectivitySubscriptions {imsi, iccid, msisdn}, no mode. The client
//     relies on none of them beyond an IMSI or ICCID, and falls back to the
//     subscription's URL for its id.
//   - Whether get-subscription embeds mode under include=: its schema lists
//     mode, its example shows URLs only. The client reads it when there and
//     says State "" otherwise (see above).
//   - euiccAgreementId on the eUICC: register-e-uicc takes it, get-e-uicc
//     does not return it. The alternate form carries it, in case some
//     deployment does; the client compares it only when present.
//   - The subscription id regex ^[85,97]{2}[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{16}$
//     is a character-class bug; the intent, ^(85|97)[2-9A-HJ-NP-Z]{16}$,
//     is what the simulator generates and validates (400 otherwise) and
//     what Client.IoTSubscription checks before asking.
//
// # Simulator
//
// Simulator serves POST /oauth2/token (form or Basic client credentials;
// default demo-iotconnect / demo-iotconnect-secret; tokens live
// SimOptions.TokenTTL), POST /euiccs, GET /euiccs/{eid} and GET
// /iot-subscriptions/{id}?include=euiccs,profiles,connectivitySubscriptions,
// validating as documented. SimOptions.Forms picks the wire form of the
// eUICC answer:
//
//   - simkit.Documented (default): exactly the get-e-uicc schema. The
//     eUICC's attributes are eid, enabledProfile and bootstrapProfile only
//     (no euiccAgreementId anywhere), embedded attributes only the assumed
//     required ones above, so connectivity subscriptions come without
//     mode; the mode is in GET /iot-subscriptions/{id}?include=connectivitySubscriptions.
//   - simkit.Alternate: embedded attributes complete (the connectivity
//     subscription's mode and firstActivationDate, the profile's
//     isEnabled, cmp and connectivityProfile, the subscription's type and
//     domain), and the eUICC's attributes carry euiccAgreementId as well.
//     Source: the same schemas read as complete objects; a form some
//     deployments may send, which the client must accept too.
//
// The IoT subscription answer is complete in both forms. The simulator
// assigns identifiers derived from the EID (IMSIs of test network 001-01,
// ICCIDs 8947000… with a Luhn digit, MSISDNs +46 0…, which no real
// subscriber has) and creates the IoT subscription AsyncDelay after
// registration. The registration is visible at once, so a lookup after a
// lost answer finds it. For the fault kit, POST /euiccs is the provision
// operation, GET /euiccs/{eid} status and GET /iot-subscriptions/{id}
// lookup. Drift hooks for reconciliation tests: Forget, SetState
// (connectivity subscription mode), Alter (iccid, imsi, msisdn) and
// Preload.
package iotconnect
