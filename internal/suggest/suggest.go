// Package suggest finds the word a user probably meant, for "did you
// mean" hints in error messages.
package suggest

// Nearest returns the candidate closest to word within a small edit
// distance (one for words of three letters or fewer, two otherwise), or ""
// when none is that close. Ties go to the earlier candidate.
func Nearest(word string, candidates []string) string {
	limit := 2
	if len(word) <= 3 {
		limit = 1
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if c == word || abs(len(c)-len(word)) > limit {
			continue
		}
		if d := distance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// DidYouMean returns " (did you mean X?)" for the nearest candidate, or "".
func DidYouMean(word string, candidates []string) string {
	if n := Nearest(word, candidates); n != "" {
		return " (did you mean " + n + "?)"
	}
	return ""
}

// distance is the Levenshtein distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	row := make([]int, len(rb)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(rb); j++ {
			sub := diag
			if ra[i-1] != rb[j-1] {
				sub++
			}
			diag = row[j]
			row[j] = min(row[j]+1, row[j-1]+1, sub)
		}
	}
	return row[len(rb)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
