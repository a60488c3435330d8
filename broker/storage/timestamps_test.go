package storage

import (
	"errors"
	"testing"
)

func TestCheckTimestamps(t *testing.T) {
	const now = int64(1_700_000_000_000)
	tests := []struct {
		name      string
		configs   map[string]string
		base, max int64
		wantErr   bool
	}{
		{"now", nil, now, now, false},
		{"an hour ahead is the limit", nil, now, now + 3_600_000, false},
		{"past the after limit", nil, now, now + 3_600_001, true},
		{"old records by default", nil, 0, now, false},
		{"before limit set", map[string]string{"message.timestamp.before.max.ms": "1000"}, now - 1001, now, true},
		{"within before limit", map[string]string{"message.timestamp.before.max.ms": "1000"}, now - 1000, now, false},
		{"unbounded after", map[string]string{"message.timestamp.after.max.ms": "9223372036854775807"}, now, now * 2, false},
		{"log append time ignores", map[string]string{"message.timestamp.type": "LogAppendTime"}, now, now * 2, false},
		{"no timestamp", map[string]string{"message.timestamp.before.max.ms": "0"}, -1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := BatchHeader{BaseTimestamp: tt.base, MaxTimestamp: tt.max, NumRecords: 1}
			err := checkTimestamps(tt.configs, nil, h, now)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidTimestamp) {
				t.Fatalf("err = %v, want ErrInvalidTimestamp", err)
			}
		})
	}
}
