package gen

import (
	"fmt"
	"go/token"
	"strconv"
	"strings"
)

// The directive verbs flowstonegen understands.
var verbs = [...]string{"asset", "check", "config", "pipeline", "sensor"}

const directivePrefix = "//flowstone:"

// directive is one //flowstone: comment line, split into options but not
// yet checked against the option tables.
type directive struct {
	verb string
	pos  token.Pos // the comment's first slash
	text string    // the whole comment line
	opts []rawOption
}

// rawOption is one key=value or bare flag of a directive.
type rawOption struct {
	name     string
	value    string
	hasValue bool
	off      int // byte offset of the option in the directive text
}

// dirError is a syntax error at a byte offset of a comment's text.
type dirError struct {
	off int
	msg string
}

// scanComment reads one comment (the text of an ast.Comment, // or /* */
// form). It returns the directive the comment holds, or errors for a
// malformed one or a lookalike, or neither for an ordinary comment.
func scanComment(text string) (*directive, []dirError) {
	if strings.HasPrefix(text, directivePrefix) {
		return parseDirective(text)
	}
	var body string
	switch {
	case strings.HasPrefix(text, "//"):
		body = text[2:]
	case strings.HasPrefix(text, "/*"):
		body = strings.TrimSuffix(text[2:], "*/")
	default:
		return nil, nil
	}
	// A block comment may hold several lines; each is checked on its own.
	var errs []dirError
	off := 2
	for line := range strings.SplitAfterSeq(body, "\n") {
		if verb, ok := lookalike(line); ok {
			shown, at := text, 0
			if strings.HasPrefix(text, "/*") {
				shown = strings.TrimSpace(line)
				at = off + len(line) - len(strings.TrimLeft(line, " \t"))
			}
			errs = append(errs, dirError{off: at, msg: fmt.Sprintf(msgLookalike, shown, verb)})
		}
		off += len(line)
	}
	return nil, errs
}

// lookalike reports whether line (a comment's text after its opening
// marker) reads like a flowstone directive written wrongly, such as
// "// flowstone:asset" or "FlowStone: asset", and which verb it resembles.
func lookalike(line string) (string, bool) {
	t := strings.ToLower(strings.TrimLeft(line, " \t*"))
	rest, ok := strings.CutPrefix(t, "flowstone")
	if !ok {
		return "", false
	}
	rest = strings.TrimLeft(rest, " \t")
	rest, colon := strings.CutPrefix(rest, ":")
	rest = strings.TrimLeft(rest, " \t")
	end := 0
	for end < len(rest) && rest[end] >= 'a' && rest[end] <= 'z' {
		end++
	}
	word := rest[:end]
	for _, v := range verbs {
		d := levenshtein(word, v)
		if d == 0 || colon && d <= 2 && len(word) > 2 {
			return v, true
		}
	}
	return "", false
}

// parseDirective splits a line starting with //flowstone: into its verb and
// options. It never panics and always returns a directive or an error.
func parseDirective(text string) (*directive, []dirError) {
	rest := text[len(directivePrefix):]
	end := strings.IndexAny(rest, " \t")
	if end < 0 {
		end = len(rest)
	}
	verb := rest[:end]
	if verb == "" {
		word := strings.TrimLeft(rest, " \t")
		if i := strings.IndexAny(word, " \t"); i >= 0 {
			word = word[:i]
		}
		v := nearest(strings.ToLower(word), verbs[:])
		if v == "" {
			v = "asset"
		}
		return nil, []dirError{{0, fmt.Sprintf(msgLookalike, text, v)}}
	}
	known := false
	for _, v := range verbs {
		if verb == v {
			known = true
		} else if strings.HasPrefix(verb, v) && !isKeyByte(verb[len(v)]) {
			return nil, []dirError{{len(directivePrefix) + len(v), fmt.Sprintf(msgDirectiveNoSpace, v)}}
		}
	}
	if !known {
		return nil, []dirError{{len(directivePrefix), fmt.Sprintf(msgUnknownDirective, verb, strings.Join(verbs[:], ", "), didYouMean(verb, verbs[:]))}}
	}
	opts, errs := parseOptions(rest[end:], len(directivePrefix)+end)
	if len(errs) > 0 {
		return nil, errs
	}
	return &directive{verb: verb, text: text, opts: opts}, nil
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// parseOptions splits s (which starts at byte base of the directive) into
// options: key=value, key="quoted Go string" or a bare flag, separated by
// spaces or tabs.
func parseOptions(s string, base int) ([]rawOption, []dirError) {
	var opts []rawOption
	var errs []dirError
	i := 0
	for i < len(s) {
		if isSpace(s[i]) {
			i++
			continue
		}
		start := i
		for i < len(s) && isKeyByte(s[i]) {
			i++
		}
		name := s[start:i]
		if name == "" || name[0] < 'a' || name[0] > 'z' || i < len(s) && !isSpace(s[i]) && s[i] != '=' {
			j := start
			for j < len(s) && !isSpace(s[j]) {
				j++
			}
			errs = append(errs, dirError{base + start, fmt.Sprintf(msgBadOptionName, s[start:j])})
			i = j
			continue
		}
		o := rawOption{name: name, off: base + start}
		if i == len(s) || isSpace(s[i]) {
			opts = append(opts, o)
			continue
		}
		i++ // '='
		o.hasValue = true
		switch {
		case i == len(s) || isSpace(s[i]):
			errs = append(errs, dirError{base + start, fmt.Sprintf(msgEmptyValue, name)})
			continue
		case s[i] == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				errs = append(errs, dirError{base + i, fmt.Sprintf(msgBadQuoted, name, "missing closing quote")})
				i = len(s)
				continue
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				errs = append(errs, dirError{base + i, fmt.Sprintf(msgBadQuoted, name, err)})
			}
			i = j + 1
			if i < len(s) && !isSpace(s[i]) {
				k := i
				for k < len(s) && !isSpace(s[k]) {
					k++
				}
				errs = append(errs, dirError{base + i, fmt.Sprintf(msgAfterQuote, name, s[i:k])})
				i = k
				continue
			}
			if err != nil {
				continue
			}
			o.value = v
		default:
			j := i
			for j < len(s) && !isSpace(s[j]) {
				j++
			}
			o.value = s[i:j]
			if strings.ContainsRune(o.value, '"') {
				errs = append(errs, dirError{base + i, fmt.Sprintf(msgStrayQuote, name)})
				i = j
				continue
			}
			i = j
		}
		opts = append(opts, o)
	}
	return opts, errs
}
