package gen

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// snakeCase turns a Go identifier into an asset key: DailyRevenue →
// daily_revenue, HTTPLogs → http_logs, cleanOrders → clean_orders.
// Initialisms are words: a run of capitals is one word, except that its
// last capital starts the next word when lower-case letters follow
// (HTTPServer → http_server), unless that is a lone plural s
// (TopStoryIDs → top_story_ids, StoryURLs → story_urls).
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	b.Grow(len(name) + 4)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1]) && !pluralS(rs, i+1)
			if prev != '_' && (unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower)) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// pluralS reports whether rs[i] is an s that ends a run of at least two
// capitals as its plural: the s of IDs or URLs.
func pluralS(rs []rune, i int) bool {
	if rs[i] != 's' || i < 2 || !unicode.IsUpper(rs[i-1]) || !unicode.IsUpper(rs[i-2]) {
		return false
	}
	return i+1 == len(rs) || !unicode.IsLower(rs[i+1])
}

// camelCase turns an asset key into the exported suffix of its generated
// names: daily_revenue → DailyRevenue.
func camelCase(key string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(key, "_") {
		b.WriteString(upperFirst(part))
	}
	return b.String()
}

// upperFirst upper-cases the first letter: rates → Rates.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// validKey reports whether s can be an asset or pipeline key: a lower-case
// letter followed by lower-case letters, digits and underscores.
func validKey(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// levenshtein is the edit distance between a and b.
func levenshtein(a, b string) int {
	if a == b {
		return 0
	}
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// nearest returns the candidate closest to name within a small edit
// distance, or "" when none is close. Ties go to the earlier candidate.
func nearest(name string, candidates []string) string {
	best, bestD := "", 0
	limit := 2
	if len(name) <= 3 {
		limit = 1
	}
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := len(c) - len(name); d > limit || -d > limit {
			continue
		}
		d := levenshtein(name, c)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean formats a suggestion suffix for an error message, or "".
func didYouMean(name string, candidates []string) string {
	if n := nearest(name, candidates); n != "" {
		return "; did you mean " + n + "?"
	}
	return ""
}
