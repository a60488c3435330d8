package broker

import (
	"reflect"
	"testing"

	"github.com/kbox-dev/kbox/broker/storage"
)

func TestAppendChunks(t *testing.T) {
	part := func(n int) storage.AppendPart { return storage.AppendPart{Batch: make([]byte, n)} }
	const mb = appendChunkBytes
	for _, tc := range []struct {
		name  string
		sizes []int
		want  []appendChunk
	}{
		{"one small batch", []int{100}, []appendChunk{{0, 1}}},
		{"small batches share an entry", []int{100, 200, 300}, []appendChunk{{0, 3}}},
		{"exactly the limit", []int{mb / 2, mb / 2}, []appendChunk{{0, 2}}},
		{"six partitions of ~1 MB", []int{mb - 10, mb - 10, mb - 10, mb - 10, mb - 10, mb - 10}, []appendChunk{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}},
		{"an oversized batch goes alone", []int{10, 3 * mb, 10, 10}, []appendChunk{{0, 1}, {1, 2}, {2, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []storage.AppendPart
			for _, n := range tc.sizes {
				parts = append(parts, part(n))
			}
			if got := appendChunks(parts); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("appendChunks(%v) = %v, want %v", tc.sizes, got, tc.want)
			}
		})
	}
}
