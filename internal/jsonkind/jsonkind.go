// Package jsonkind names the type of a JSON value for error messages
// ("field \"expires_at\" must be Unix seconds, not string") without decoding
// it. The token file reader and the public receiver both use it; it imports
// the standard library only.
package jsonkind

// Of names the type of the valid JSON value raw from its first byte after
// white space: "string", "object", "array", "boolean", "null" or "number";
// "nothing" when raw is empty or white space only.
func Of(raw []byte) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			return "string"
		case '{':
			return "object"
		case '[':
			return "array"
		case 't', 'f':
			return "boolean"
		case 'n':
			return "null"
		}
		return "number"
	}
	return "nothing"
}
