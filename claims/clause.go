package claims

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clauseScan decides, word by word, whether a text reads as an independent
// clause: it does not open with a subordinating word, and its first verb has
// a subject before it. It is a deliberately small heuristic: a verb is an
// auxiliary (is, are, was, has, can, ...), an inflected form of a lexicon
// verb (flows, orbits, boiled, wrote), a base form of one after a plural
// subject (rivers flow), an unknown word ending in -ed after a subject word,
// an unknown word ending in -s right after he, she, it or a proper noun, or a
// relation sign (=, <, ≠). A word right after an article or possessive is a
// noun, never a verb ("the flows"). The subject is any word before the verb
// that is not a function word (preposition, conjunction, adverb, article).
//
// Feeding a scan more text is the same as scanning the longer text, and the
// decision only depends on the words up to the first verb, so growing a
// clause costs time linear in what is added.
type clauseScan struct {
	words   int
	nominal bool // a subject word was seen before any verb
	decided bool
	result  bool
	prev    string
}

func scanClause(text string) *clauseScan {
	c := &clauseScan{}
	c.feed(text)
	return c
}

func (c *clauseScan) feed(text string) {
	for _, w := range clauseWords(text) {
		c.word(w)
	}
}

func (c *clauseScan) word(w string) {
	i := c.words
	c.words++
	switch {
	case c.decided:
		return
	case i == 0 && subordinators[strings.ToLower(w)]:
		c.decided, c.result = true, false
	case selfContained(w):
		c.decided, c.result = true, true // it's, they're, 2+2=4
	case i > 0 && isVerb(c.prev, w, i):
		c.decided, c.result = true, c.nominal
	default:
		c.nominal = c.nominal || nominal(w)
		c.prev = w
	}
}

// independent reports whether the scanned text is an independent clause of
// at least minWords words.
func (c *clauseScan) independent(minWords int) bool {
	return c.decided && c.result && c.words >= minWords
}

// clauseWords splits text into words stripped of surrounding punctuation,
// with typographic apostrophes made plain.
func clauseWords(text string) []string {
	fields := strings.Fields(strings.ReplaceAll(text, "’", "'"))
	words := fields[:0]
	for _, f := range fields {
		w := strings.TrimFunc(f, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !isRelation(r)
		})
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

func isRelation(r rune) bool {
	switch r {
	case '=', '<', '>', '≠', '≈', '≤', '≥':
		return true
	}
	return false
}

// selfContained reports a word that carries both a subject and a verb: a
// pronoun contraction or a relation with something before it (2+2=4).
func selfContained(w string) bool {
	if i := strings.IndexFunc(w, isRelation); i > 0 {
		return true
	}
	lw := strings.ToLower(w)
	if p, suf, ok := strings.Cut(lw, "'"); ok && pronouns[p] {
		switch suf {
		case "s", "re", "ve", "ll", "d", "m":
			return true
		}
	}
	return false
}

// isVerb reports whether w, the i-th word (i > 0) after prev, is a verb.
func isVerb(prev, w string, i int) bool {
	if isRelationWord(w) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(w)
	if !unicode.IsLower(r) {
		return false
	}
	pr, _ := utf8.DecodeRuneInString(prev)
	properPrev := unicode.IsUpper(pr) && i > 1
	prev = strings.ToLower(prev)
	if articles[prev] {
		return false // the flows, a must, its rules
	}
	if auxiliaries[w] {
		return true
	}
	if f, ok := verbForms[w]; ok {
		if !f.base {
			return true
		}
		// A bare base form is only a verb after a plural subject.
		return pluralSubjects[prev] || plural(prev)
	}
	switch {
	case strings.HasSuffix(w, "ed") && len(w) >= 5 && !strings.HasSuffix(w, "eed") && !edNotVerb[w]:
		return nominal(prev)
	case strings.HasSuffix(w, "s") && len(w) >= 4 && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us"):
		return singularSubjects[prev] || properPrev
	}
	return false
}

func isRelationWord(w string) bool {
	r, size := utf8.DecodeRuneInString(w)
	return size == len(w) && isRelation(r)
}

// plural is a rough test for a plural noun: a content word ending in -s.
func plural(w string) bool {
	return len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!functionWords[w] && !articles[w] && !auxiliaries[w]
}

// nominal reports whether w can be (part of) a subject.
func nominal(w string) bool {
	lw := strings.ToLower(w)
	if functionWords[lw] || articles[lw] || subordinators[lw] || isRelationWord(w) {
		return false
	}
	return strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
}

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

var (
	auxiliaries = set("is", "are", "was", "were", "am", "has", "have", "had",
		"does", "do", "did", "can", "could", "will", "would", "shall", "should",
		"may", "might", "must", "cannot", "equals", "isn't", "aren't", "wasn't",
		"weren't", "hasn't", "haven't", "hadn't", "doesn't", "don't", "didn't",
		"can't", "couldn't", "won't", "wouldn't", "shan't", "shouldn't",
		"mightn't", "mustn't", "ain't")

	// articles, possessives and quantifiers: a word right after one is a noun.
	articles = set("the", "a", "an", "my", "your", "his", "her", "its", "our",
		"their", "every", "each", "some", "any", "no", "many", "few", "several",
		"another", "other", "such", "whose", "much", "more", "most", "all",
		"both", "either", "neither", "less", "least")

	pronouns = set("i", "you", "he", "she", "it", "we", "they", "this", "that",
		"there", "here", "what", "who", "where", "let")

	pluralSubjects = set("i", "you", "we", "they", "these", "those", "people")

	singularSubjects = set("he", "she", "it", "this", "that", "one", "who",
		"everyone", "everybody", "someone", "somebody", "nobody", "everything",
		"something", "nothing")

	subordinators = set("if", "when", "whenever", "because", "although",
		"though", "while", "whilst", "since", "unless", "until", "whereas",
		"whether", "which", "who", "whom", "whose", "where", "wherever", "after",
		"before", "once", "as")

	functionWords = set(
		// prepositions
		"in", "on", "at", "to", "of", "for", "with", "by", "from", "into",
		"onto", "over", "under", "about", "above", "below", "between", "among",
		"through", "during", "after", "before", "since", "until", "within",
		"without", "across", "along", "around", "behind", "beyond", "near",
		"per", "via", "than", "as", "upon", "toward", "towards", "against",
		// conjunctions
		"and", "but", "or", "nor", "so", "yet",
		// adverbs
		"then", "also", "later", "still", "thus", "therefore", "however",
		"moreover", "furthermore", "hence", "otherwise", "meanwhile",
		"instead", "finally", "first", "again", "already", "always", "never",
		"often", "sometimes", "usually", "now", "soon", "just", "only", "even",
		"not", "very", "too", "quite", "rather", "well", "highly", "widely",
		"perhaps", "maybe", "indeed", "actually", "really", "certainly",
		"probably", "nearly", "almost", "once", "twice", "generally",
		"mostly", "largely", "mainly", "roughly", "approximately", "about")

	// Words ending in -ed that are rarely verbs.
	edNotVerb = set("hundred", "sacred", "naked", "wicked", "rugged",
		"ragged", "jagged", "crooked", "beloved", "kindred", "united",
		"learned", "aged", "blessed", "dogged", "wretched", "shred")
)

// verbForm marks a lexicon word; base forms need a plural subject to count.
type verbForm struct{ base bool }

// verbForms holds the inflected forms of a small lexicon of common verbs.
var verbForms = buildVerbForms()

func buildVerbForms() map[string]verbForm {
	regular := strings.Fields(`orbit boil melt flow travel contain cover border lie produce equal
		include consist measure weigh reach live die invent discover found remain
		seem appear cause want like love move play provide require allow create
		happen exist belong originate rotate revolve absorb convert connect
		support represent serve operate launch learn study marry join defeat
		govern declare establish erupt kill cross enter separate divide multiply
		add increase decrease hunt follow carry design develop dominate drain
		stretch surround visit conduct consume release cool evaporate condense
		dissolve react compose describe prove reflect refract attract float bloom
		migrate breathe celebrate elect own host ask try destroy invade occupy protect
		cure prevent treat infect contract expand publish explain believe exceed
		digest regulate transport encode translate`)
	irregular := map[string][]string{
		"freeze": {"froze", "frozen"}, "sit": {"sat"}, "stand": {"stood"},
		"run": {"ran"}, "make": {"made"}, "rise": {"rose", "risen"},
		"fall": {"fell", "fallen"}, "write": {"wrote", "written"},
		"build": {"built"}, "become": {"became"}, "mean": {"meant"},
		"know": {"knew", "known"}, "think": {"thought"}, "say": {"said"},
		"speak": {"spoke", "spoken"}, "eat": {"ate", "eaten"},
		"drink": {"drank", "drunk"}, "grow": {"grew", "grown"}, "get": {"got"},
		"give": {"gave", "given"}, "take": {"took", "taken"},
		"go": {"went", "gone"}, "come": {"came"}, "see": {"saw", "seen"},
		"find": {"found"}, "begin": {"began", "begun"}, "win": {"won"},
		"lose": {"lost"}, "lead": {"led"}, "hold": {"held"},
		"bring": {"brought"}, "keep": {"kept"}, "pay": {"paid"},
		"feel": {"felt"}, "spin": {"spun"}, "shine": {"shone"},
		"emit": {"emitted"}, "fly": {"flew", "flown"}, "swim": {"swam"},
		"sing": {"sang", "sung"}, "teach": {"taught"}, "sleep": {"slept"},
		"bear": {"bore", "born"}, "fight": {"fought"}, "buy": {"bought"},
		"sell": {"sold"}, "send": {"sent"}, "tell": {"told"},
		"hear": {"heard"}, "meet": {"met"}, "leave": {"left"},
		"drive": {"drove", "driven"}, "ride": {"rode"}, "sink": {"sank"},
		"occur": {"occurred"}, "stop": {"stopped"}, "transmit": {"transmitted"},
		"repel": {"repelled"}, "lay": {"laid"}, "strike": {"struck"},
		"break": {"broke", "broken"}, "choose": {"chose", "chosen"},
		"hide": {"hid", "hidden"}, "show": {"showed", "shown"},
		"beat": {"beaten"}, "set": nil, "put": nil, "cut": nil, "hit": nil,
		"read": nil, "let": nil, "spread": nil, "cost": nil, "shut": nil,
	}
	m := make(map[string]verbForm)
	add := func(base string) {
		m[base] = verbForm{base: true}
		m[thirdPerson(base)] = verbForm{}
		m[past(base)] = verbForm{}
	}
	for _, b := range regular {
		add(b)
	}
	bases := make([]string, 0, len(irregular))
	for b := range irregular {
		bases = append(bases, b)
	}
	slices.Sort(bases)
	for _, b := range bases {
		forms := irregular[b]
		m[b] = verbForm{base: true}
		m[thirdPerson(b)] = verbForm{}
		for _, f := range forms {
			m[f] = verbForm{}
		}
	}
	return m
}

func thirdPerson(b string) string {
	switch {
	case strings.HasSuffix(b, "s"), strings.HasSuffix(b, "x"), strings.HasSuffix(b, "z"),
		strings.HasSuffix(b, "ch"), strings.HasSuffix(b, "sh"), strings.HasSuffix(b, "o"):
		return b + "es"
	case consonantY(b):
		return b[:len(b)-1] + "ies"
	}
	return b + "s"
}

func past(b string) string {
	switch {
	case strings.HasSuffix(b, "e"):
		return b + "d"
	case consonantY(b):
		return b[:len(b)-1] + "ied"
	}
	return b + "ed"
}

func consonantY(b string) bool {
	return len(b) > 1 && b[len(b)-1] == 'y' && !strings.ContainsRune("aeiou", rune(b[len(b)-2]))
}
