package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	mathbits "math/bits"
	"slices"
	"strconv"
	"sync"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// The feature values of a decision are the bulk of its row: as a JSON
// object about two thirds of the bytes are the keys, the same few dozen
// names on every decision of a type. The decision log therefore stores
// the values alone, as a JSON array in the order of their sorted keys,
// and the keys once, as a feature set (table feature_sets) that the row
// names by id. Reading a decision puts keys and values back together into
// exactly the object AppendFeatures gives. A set's id is derived from its
// keys (the first 63 bits of their SHA-256), so that any number of
// servers on one database agree on it without asking the database. Each
// Log stores a set, in a statement of its own, before the first row that
// names it, and checks the keys stored under its id; in the unthinkable
// case of two sets with one id, the rows keep the object.

// featureSet is one set of feature keys, in sorted order.
type featureSet struct {
	id   int64
	keys []string
	json string // the keys as a JSON array, as stored
}

// rankMask has a bit per ranked feature key (keyOrder).
type rankMask [(maxOrdered + 63) / 64]uint64

// featureSets holds every set met so far, by the keys it has.
var featureSets = struct {
	sync.RWMutex
	byMask map[rankMask]*featureSet
}{byMask: map[rankMask]*featureSet{}}

// newFeatureSet returns the set of keys, with its id.
func newFeatureSet(keys []string) *featureSet {
	js, _ := json.Marshal(keys)
	sum := sha256.Sum256(js)
	id := int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
	if id == 0 {
		id = 1 // 0 names the object form
	}
	return &featureSet{id: id, keys: keys, json: string(js)}
}

// setOf returns the feature set of the ranked keys in mask.
func setOf(mask *rankMask) *featureSet {
	featureSets.RLock()
	fs := featureSets.byMask[*mask]
	featureSets.RUnlock()
	if fs != nil {
		return fs
	}
	ko := keyOrder()
	keys := []string{}
	for w, bits := range mask {
		for bits != 0 {
			r := w*64 + mathbits.TrailingZeros64(bits)
			bits &= bits - 1
			keys = append(keys, ko.names[r])
		}
	}
	fs = newFeatureSet(keys)
	featureSets.Lock()
	defer featureSets.Unlock()
	if prev := featureSets.byMask[*mask]; prev != nil {
		return prev
	}
	featureSets.byMask[*mask] = fs
	return fs
}

// rankFeatures puts m's values in the order of their keys' ranks. It
// reports false when m has a key without a rank (or too many keys).
func rankFeatures(m map[string]any, mask *rankMask, vals *[maxOrdered]any) bool {
	if len(m) > maxOrdered {
		return false
	}
	ko := keyOrder()
	for k, v := range m {
		r, ok := ko.rank[k]
		if !ok {
			return false
		}
		mask[r/64] |= 1 << (r % 64)
		vals[r] = v
	}
	return true
}

// AppendFeatures appends the feature values as one JSON object with sorted
// keys: the same output as json.Marshal, at a fraction of the cost on the
// decision path. The keys the engine gives (risk.Variables, and the
// pipeline's own) are put in order without sorting.
func AppendFeatures(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var mask rankMask
	var vals [maxOrdered]any
	if !rankFeatures(m, &mask, &vals) {
		return appendFeaturesSorted(b, m)
	}
	return appendRanked(b, &mask, &vals, true)
}

// appendFeatureValues appends m's values as a JSON array in the order of
// their sorted keys, and returns the set of those keys. A map with a key
// the engine does not give (or nil) is appended as AppendFeatures does,
// with a nil set.
func appendFeatureValues(b []byte, m map[string]any) ([]byte, *featureSet) {
	var mask rankMask
	var vals [maxOrdered]any
	if m == nil || !rankFeatures(m, &mask, &vals) {
		return AppendFeatures(b, m), nil
	}
	return appendRanked(b, &mask, &vals, false), setOf(&mask)
}

// appendRanked appends the values of the ranks in mask, in rank order: as
// a JSON object with their keys, or as a JSON array without them.
func appendRanked(b []byte, mask *rankMask, vals *[maxOrdered]any, withKeys bool) []byte {
	ko := keyOrder()
	open, close := byte('['), byte(']')
	if withKeys {
		open, close = '{', '}'
	}
	b = append(b, open)
	first := true
	for w, bits := range mask {
		for bits != 0 {
			r := w*64 + mathbits.TrailingZeros64(bits)
			bits &= bits - 1
			if !first {
				b = append(b, ',')
			}
			first = false
			if withKeys {
				b = append(b, ko.quoted[r]...)
			}
			b = appendFeature(b, vals[r])
		}
	}
	return append(b, close)
}

// featuresObject puts a stored row's features back together: values, a
// JSON array, under keys, as the object AppendFeatures gives.
func featuresObject(keys []string, values string) (string, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal([]byte(values), &vals); err != nil {
		return "", fmt.Errorf("pipeline: stored feature values: %w", err)
	}
	if len(vals) != len(keys) {
		return "", fmt.Errorf("pipeline: %d stored feature values for %d keys", len(vals), len(keys))
	}
	b := make([]byte, 0, len(values)+len(keys)*32)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = event.AppendString(b, k)
		b = append(b, ':')
		b = append(b, vals[i]...)
	}
	return string(append(b, '}')), nil
}

// maxOrdered is the most keys AppendFeatures puts in order by rank.
const maxOrdered = 256

// keyOrder ranks the feature keys the engine and the pipeline give, in
// sorted order, with each key's JSON (`"name":`).
var keyOrder = sync.OnceValue(func() (o struct {
	rank   map[string]int
	names  []string
	quoted [][]byte
}) {
	names := []string{surveilHeldProceeds}
	for _, v := range risk.Variables() {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > maxOrdered {
		names = names[:maxOrdered] // the rest take the sorting path
	}
	o.rank = make(map[string]int, len(names))
	o.names = names
	for i, n := range names {
		o.rank[n] = i
		o.quoted = append(o.quoted, append(event.AppendString(nil, n), ':'))
	}
	return o
})

// appendFeaturesSorted is AppendFeatures for any keys.
func appendFeaturesSorted(b []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = event.AppendString(b, k)
		b = append(b, ':')
		b = appendFeature(b, m[k])
	}
	return append(b, '}')
}

// appendFeature appends one feature value as encoding/json does.
func appendFeature(b []byte, v any) []byte {
	switch v := v.(type) {
	case bool:
		return strconv.AppendBool(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return appendFloat(b, v)
	case string:
		return event.AppendString(b, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		j = []byte("null")
	}
	return append(b, j...)
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
