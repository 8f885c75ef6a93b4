package iotconnect

// The JSON shapes on the wire, shared by the client and the simulator, as
// the Telenor IoT developer portal documents them (register-e-uicc,
// get-e-uicc, get-subscription; see doc.go). Every property is optional
// when decoding: embedded relationship attributes carry only the properties
// the portal marks required, and which those are is not visible.

// API paths, relative to Config.BaseURL.
const (
	apiPrefix         = "/iot-connect/subscriptions/v1"
	euiccsPath        = apiPrefix + "/euiccs"
	subscriptionsPath = apiPrefix + "/iot-subscriptions"
	profilesPath      = apiPrefix + "/profiles"
	connectivityPath  = apiPrefix + "/connectivity-subscriptions"

	// What the client asks to have embedded, so that one GET answers
	// "is the subscription there, and with which identifiers".
	euiccInclude        = "iotSubscription,profiles,connectivitySubscriptions"
	subscriptionInclude = "euiccs,profiles,connectivitySubscriptions"
	// modeInclude is all a read of the subscription for its connectivity
	// subscriptions' mode asks for: the portal warns that every include
	// makes the answer slower.
	modeInclude = "connectivitySubscriptions"
)

// Connectivity subscription modes (documented enum).
const (
	ModeActive          = "ACTIVE"
	ModeActiveNoBilling = "ACTIVE_NO_BILLING"
	ModeDeactivated     = "DEACTIVATED"
	ModePaused          = "PAUSED"
	ModeTerminated      = "TERMINATED"
)

// Registration is the documented body of POST /euiccs ("Register eUICC").
type Registration struct {
	EID      string `json:"eid"`
	CMP      string `json:"cmp"`
	DomainID string `json:"domainId,omitempty"` // omitted: the caller's own domain
	// EUICCAgreementID identifies the organisation's agreement the eUICC
	// is registered under.
	EUICCAgreementID string `json:"euiccAgreementId"`
	LocaleID         string `json:"localeId"`
}

// registered is the documented 202 answer to POST /euiccs.
type registered struct {
	IMSI   string `json:"imsi"`
	ICCID  string `json:"iccid"`
	MSISDN string `json:"msisdn"`
}

// envelope is the documented error body of every 4xx/5xx.
type envelope struct {
	Name    string          `json:"name"`
	Message string          `json:"message"`
	Errors  []envelopeError `json:"errors"`
}

type envelopeError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
	Path      string `json:"path,omitempty"`
}

type domainRef struct {
	DomainID string `json:"domainId,omitempty"`
}

// link is one entry of a resource's relationships: always its URL, and its
// attributes when the request's include= named the relationship.
type link[A any] struct {
	URL        string `json:"url"`
	Attributes *A     `json:"attributes,omitempty"`
}

// euiccAttributes describes an eUICC: eid, enabledProfile and
// bootstrapProfile are all get-e-uicc documents. EUICCAgreementID is not
// documented there; the alternate form carries it (see doc.go), and the
// client compares it only when an answer has it.
type euiccAttributes struct {
	EID              string `json:"eid,omitempty"`
	EnabledProfile   string `json:"enabledProfile,omitempty"`
	BootstrapProfile string `json:"bootstrapProfile,omitempty"`
	EUICCAgreementID string `json:"euiccAgreementId,omitempty"`
}

type subscriptionAttributes struct {
	ID               string            `json:"id,omitempty"`
	SubscriptionType string            `json:"subscriptionType,omitempty"`
	Domain           *domainRef        `json:"domain,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
}

type connectivityProfile struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

type profileAttributes struct {
	ICCID               string               `json:"iccid,omitempty"`
	ProfileType         string               `json:"profileType,omitempty"`
	IsEnabled           *bool                `json:"isEnabled,omitempty"`
	CMP                 string               `json:"cmp,omitempty"`
	ConnectivityProfile *connectivityProfile `json:"connectivityProfile,omitempty"`
}

type connectivityAttributes struct {
	IMSI   string `json:"imsi,omitempty"`
	ICCID  string `json:"iccid,omitempty"`
	MSISDN string `json:"msisdn,omitempty"`
	Mode   string `json:"mode,omitempty"`
	// Kept as text: the client only reports it, and a format it does not
	// expect must not make a good answer unreadable.
	FirstActivationDate string `json:"firstActivationDate,omitempty"`
}

// euiccResource is GET /euiccs/{eid} (get-e-uicc). iotSubscription is a
// to-one relationship, absent until the IoT subscription has been
// provisioned; profiles and connectivitySubscriptions are empty until then.
// Attributes is a pointer so that the client can tell an answer without
// them (unreadable) from one with empty values.
type euiccResource struct {
	Attributes    *euiccAttributes   `json:"attributes"`
	Relationships euiccRelationships `json:"relationships"`
}

type euiccRelationships struct {
	IoTSubscription           *link[subscriptionAttributes]  `json:"iotSubscription,omitempty"`
	Profiles                  []link[profileAttributes]      `json:"profiles"`
	ConnectivitySubscriptions []link[connectivityAttributes] `json:"connectivitySubscriptions"`
}

// subscriptionResource is the documented GET /iot-subscriptions/{id}
// (get-subscription).
type subscriptionResource struct {
	Attributes    *subscriptionAttributes   `json:"attributes"`
	Relationships subscriptionRelationships `json:"relationships"`
}

type subscriptionRelationships struct {
	EUICCs                    []link[euiccAttributes]        `json:"euiccs"`
	Profiles                  []link[profileAttributes]      `json:"profiles"`
	ConnectivitySubscriptions []link[connectivityAttributes] `json:"connectivitySubscriptions"`
}
