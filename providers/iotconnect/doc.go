// Package iotconnect provisions eSIMs through Telenor IoT Connect's
// Subscriptions API v1, and simulates that API for tests and the demo.
//
// # How a row is provisioned
//
// Submit registers the eUICC: POST /iot-connect/subscriptions/v1/euiccs
// with {eid, cmp, domainId?, euiccAgreementId, localeId} taken from the
// order's EID and its cmp, domain_id, euicc_agreement_id and locale_id
// fields. IoT Connect answers 202 with the imsi, iccid and msisdn it
// assigned, but the IoT subscription is provisioned later ("this
// eventually results in an IoT subscription"), so the outcome is Accepted
// with the EID as Handle. Check GETs
// /euiccs/{eid}?include=iotSubscription,profiles,connectivitySubscriptions
// once per call and reports Succeeded (imsi, iccid, msisdn,
// subscription_id, mode) once the eUICC shows its IoT subscription and
// connectivity subscription. Lookup reads the same resource: 404 is not
// found, a registration without a subscription yet is Found and Pending,
// otherwise State is the connectivity subscription's mode and Active means
// ACTIVE or ACTIVE_NO_BILLING. One eUICC per request: BatchSize is 1.
//
// Authentication is OAuth2 client credentials at Config.TokenURL; the
// bearer token is shared by all workers, fetched again a minute before it
// expires, and once more after a 401.
//
// # What the documents leave open, and what this package decided
//
//   - The eUICC GET is not documented. Its answer is modelled on the
//     documented IoT subscription resource: {"attributes": {eid,
//     enabledProfile, bootstrapProfile, cmp, euiccAgreementId, localeId,
//     domain}, "relationships": {"iotSubscription": {url, attributes?},
//     "profiles": [{url, attributes?}], "connectivitySubscriptions": [{url,
//     attributes?}]}}. iotSubscription is to-one and absent until the
//     subscription exists; attributes are embedded only for relationships
//     named in include=. Where an answer names the IoT subscription but does
//     not embed its connectivity subscription, the client reads the
//     documented GET /iot-subscriptions/{id}?include=euiccs,profiles,
//     connectivitySubscriptions instead (Client.IoTSubscription).
//   - An EID registered already: the documents list no 409, so the
//     simulator answers 400 with errorCode EUICC_ALREADY_REGISTERED (path
//     eid); the client also accepts a 409. It then reads the eUICC: under
//     the same euiccAgreementId it is this registration sent before (a lost
//     answer, an earlier run), reported as it stands with
//     already_registered=true; under another agreement it is a permanent
//     conflict (providers.CodeConflict).
//   - The subscription id regex ^[85,97]{2}[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{16}$
//     is a character-class bug; the intent, ^(85|97)[2-9A-HJ-NP-Z]{16}$,
//     is what the simulator generates and validates (400 otherwise) and
//     what the client checks before asking.
//   - The envelope {name, message, errors[{message, errorCode, path}]} has
//     no documented codes. Documented 4xx keep the provider's code (first
//     errors[].errorCode, else name) and message (with the first error's
//     message and path). For 401 (after one re-authentication) the code is
//     providers.CodeAuth, and for 429 and 5xx simbulk's retryable codes, with
//     the provider's words in the message. The simulator's codes: REQUIRED,
//     INVALID_FORMAT, INVALID_VALUE, INVALID_BODY, INVALID_TOKEN,
//     EUICC_ALREADY_REGISTERED, EUICC_NOT_FOUND, SUBSCRIPTION_NOT_FOUND.
//   - A Check that cannot get an answer (429, 5xx, timeout) returns Accepted
//     with the error attached: the registration is not in doubt, only the
//     look failed. A Check that finds the accepted eUICC gone fails
//     retryable, since registering again is safe.
//
// # Simulator
//
// Simulator serves POST /oauth2/token (form or Basic client credentials;
// default demo-iotconnect / demo-iotconnect-secret; tokens live
// SimOptions.TokenTTL), POST /euiccs, GET /euiccs/{eid} and GET
// /iot-subscriptions/{id}, validating as documented. It assigns
// identifiers derived from the EID (IMSIs of test network 001-01, ICCIDs
// 8947000… with a Luhn digit, MSISDNs +46 0…, which no real subscriber
// has) and creates the IoT subscription AsyncDelay after registration. The
// registration is visible at once, so a lookup after a lost answer finds
// it. For the fault kit, POST /euiccs is the provision operation, GET
// /euiccs/{eid} status and GET /iot-subscriptions/{id} lookup. Drift hooks
// for reconciliation tests: Forget, SetState (connectivity subscription
// mode), Alter (iccid, imsi, msisdn) and Preload.
package iotconnect
