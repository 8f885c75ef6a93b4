package ingest

// countryCallingCodes are the ITU-T E.164 country calling codes in service
// (ITU-T E.164 Annex / Operational Bulletin list), including the
// international codes for global services (800, 808, 870, 878, 881-883, 888,
// 979, 991). Spare and reserved codes are left out.
//
// The set is prefix-free (no code is the start of another), which is what
// lets a plain E.164 number be split into country code and national number
// by trying the 1-, 2- and 3-digit prefixes in turn. A test keeps it so.
var countryCallingCodes = map[string]struct{}{
	// Zone 1: North American Numbering Plan (US, Canada, Caribbean, ...)
	"1": {},
	// Zone 2: Africa and a few islands
	"20": {}, "211": {}, "212": {}, "213": {}, "216": {}, "218": {},
	"220": {}, "221": {}, "222": {}, "223": {}, "224": {}, "225": {}, "226": {}, "227": {}, "228": {}, "229": {},
	"230": {}, "231": {}, "232": {}, "233": {}, "234": {}, "235": {}, "236": {}, "237": {}, "238": {}, "239": {},
	"240": {}, "241": {}, "242": {}, "243": {}, "244": {}, "245": {}, "246": {}, "247": {}, "248": {}, "249": {},
	"250": {}, "251": {}, "252": {}, "253": {}, "254": {}, "255": {}, "256": {}, "257": {}, "258": {},
	"260": {}, "261": {}, "262": {}, "263": {}, "264": {}, "265": {}, "266": {}, "267": {}, "268": {}, "269": {},
	"27": {}, "290": {}, "291": {}, "297": {}, "298": {}, "299": {},
	// Zone 3: Europe
	"30": {}, "31": {}, "32": {}, "33": {}, "34": {},
	"350": {}, "351": {}, "352": {}, "353": {}, "354": {}, "355": {}, "356": {}, "357": {}, "358": {}, "359": {},
	"36":  {},
	"370": {}, "371": {}, "372": {}, "373": {}, "374": {}, "375": {}, "376": {}, "377": {}, "378": {}, "379": {},
	"380": {}, "381": {}, "382": {}, "383": {}, "385": {}, "386": {}, "387": {}, "388": {}, "389": {},
	"39": {},
	// Zone 4: Europe
	"40": {}, "41": {}, "420": {}, "421": {}, "423": {},
	"43": {}, "44": {}, "45": {}, "46": {}, "47": {}, "48": {}, "49": {},
	// Zone 5: South and Central America
	"500": {}, "501": {}, "502": {}, "503": {}, "504": {}, "505": {}, "506": {}, "507": {}, "508": {}, "509": {},
	"51": {}, "52": {}, "53": {}, "54": {}, "55": {}, "56": {}, "57": {}, "58": {},
	"590": {}, "591": {}, "592": {}, "593": {}, "594": {}, "595": {}, "596": {}, "597": {}, "598": {}, "599": {},
	// Zone 6: South-east Asia and Oceania
	"60": {}, "61": {}, "62": {}, "63": {}, "64": {}, "65": {}, "66": {},
	"670": {}, "672": {}, "673": {}, "674": {}, "675": {}, "676": {}, "677": {}, "678": {}, "679": {},
	"680": {}, "681": {}, "682": {}, "683": {}, "685": {}, "686": {}, "687": {}, "688": {}, "689": {},
	"690": {}, "691": {}, "692": {},
	// Zone 7: Russia and Kazakhstan
	"7": {},
	// Zone 8: East Asia and international services
	"800": {}, "808": {}, "81": {}, "82": {}, "84": {},
	"850": {}, "852": {}, "853": {}, "855": {}, "856": {}, "86": {},
	"870": {}, "878": {}, "880": {}, "881": {}, "882": {}, "883": {}, "886": {}, "888": {},
	// Zone 9: West, Central and South Asia, Middle East
	"90": {}, "91": {}, "92": {}, "93": {}, "94": {}, "95": {},
	"960": {}, "961": {}, "962": {}, "963": {}, "964": {}, "965": {}, "966": {}, "967": {}, "968": {},
	"970": {}, "971": {}, "972": {}, "973": {}, "974": {}, "975": {}, "976": {}, "977": {}, "979": {},
	"98": {}, "991": {}, "992": {}, "993": {}, "994": {}, "995": {}, "996": {}, "998": {},
}

// SplitCountryCode splits an international number (digits only, no "+")
// into its ITU country calling code and the national number, e.g.
// "447700900123" -> "44", "7700900123". ok is false when the number does not
// start with an assigned country calling code.
func SplitCountryCode(digits string) (cc, national string, ok bool) {
	for n := 1; n <= 3 && n < len(digits); n++ {
		if _, found := countryCallingCodes[digits[:n]]; found {
			return digits[:n], digits[n:], true
		}
	}
	return "", "", false
}
