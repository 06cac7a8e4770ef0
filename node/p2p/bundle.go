package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A bundle carries several messages of one kind in one gossip message or
// one direct stream, so that a burst of messages pays for one message's
// transport, framing and validation call instead of one each:
//
//	0xb1 | uvarint count | count × (uvarint length | message)
//
// with count from 2 to MaxBundleItems, every length at least 1, every
// uvarint in its shortest form and nothing after the last message. A
// message alone is sent as itself, never as a bundle of one, and a bundle
// holds no bundle: a set of messages in a given order has one encoding, as
// gossip, which tells messages apart by the hash of their bytes, needs.
// The messages themselves are JSON (they start with '{'), so a bundle is
// told from a message by its first byte.
//
// Each message of a bundle is judged on its own by its kind's validator. A
// bundle with a message the validator rejects is rejected whole (its sender
// forwarded or wrote something invalid); one whose messages are all ignored
// is ignored; otherwise it is accepted and forwarded whole, and its accepted
// messages are delivered one by one.
const bundleTag = 0xb1

// MaxBundleItems bounds the messages of one bundle.
const MaxBundleItems = 1024

// ErrBadBundle is a bundle that is not in the encoding above.
var ErrBadBundle = errors.New("malformed bundle")

// isBundle reports whether data is a bundle rather than one message.
func isBundle(data []byte) bool { return len(data) > 0 && data[0] == bundleTag }

// bundleSize is the encoded size of a bundle of items.
func bundleSize(items [][]byte) int {
	n := 1 + uvarintLen(uint64(len(items)))
	for _, it := range items {
		n += uvarintLen(uint64(len(it))) + len(it)
	}
	return n
}

func uvarintLen(x uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], x)
}

// encodeBundle is the bundle of items: the item itself if there is one.
// Items must be non-empty, at most MaxBundleItems, and none a bundle.
func encodeBundle(items [][]byte) []byte {
	if len(items) == 1 {
		return items[0]
	}
	out := make([]byte, 0, bundleSize(items))
	out = append(out, bundleTag)
	out = binary.AppendUvarint(out, uint64(len(items)))
	for _, it := range items {
		out = binary.AppendUvarint(out, uint64(len(it)))
		out = append(out, it...)
	}
	return out
}

// decodeBundle splits a bundle into its messages, which share data's
// memory. It refuses anything but the one encoding of a bundle.
func decodeBundle(data []byte) ([][]byte, error) {
	if !isBundle(data) {
		return nil, fmt.Errorf("%w: no bundle tag", ErrBadBundle)
	}
	rest := data[1:]
	count, err := readUvarint(&rest)
	if err != nil {
		return nil, err
	}
	if count < 2 || count > MaxBundleItems {
		return nil, fmt.Errorf("%w: %d messages", ErrBadBundle, count)
	}
	items := make([][]byte, 0, count)
	for range count {
		n, err := readUvarint(&rest)
		if err != nil {
			return nil, err
		}
		if n == 0 || n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: message of %d bytes with %d left", ErrBadBundle, n, len(rest))
		}
		it := rest[:n:n]
		if isBundle(it) {
			return nil, fmt.Errorf("%w: a bundle inside a bundle", ErrBadBundle)
		}
		items = append(items, it)
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last message", ErrBadBundle, len(rest))
	}
	return items, nil
}

// readUvarint takes a uvarint in its shortest form off the front of *b.
func readUvarint(b *[]byte) (uint64, error) {
	x, n := binary.Uvarint(*b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad length", ErrBadBundle)
	}
	if n != uvarintLen(x) {
		return 0, fmt.Errorf("%w: length not in its shortest form", ErrBadBundle)
	}
	*b = (*b)[n:]
	return x, nil
}

// packBundles splits items, in order, into as few messages as fit within
// maxSize bytes each (an item alone is sent as itself, whatever its size;
// Publish refuses one over the limit).
func packBundles(items [][]byte, maxSize int) [][]byte {
	var out [][]byte
	start, size := 0, 0
	for i, it := range items {
		add := uvarintLen(uint64(len(it))) + len(it)
		// 1 tag byte and at most 2 bytes of count (MaxBundleItems).
		if i > start && (i-start == MaxBundleItems || 3+size+add > maxSize) {
			out = append(out, encodeBundle(items[start:i]))
			start, size = i, 0
		}
		size += add
	}
	if start < len(items) {
		out = append(out, encodeBundle(items[start:]))
	}
	return out
}
