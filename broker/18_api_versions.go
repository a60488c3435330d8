package broker

// ApiVersions, key 18, versions 0-4.
//
// Lists every API key of the table in apis.go with the range served. A
// request at an unsupported version is answered with v0 and
// UNSUPPORTED_VERSION, as KIP-511 asks, so the client can retry lower.
// Feature flags (KIP-584) are not reported.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsMax = 4

var apiVersionsAPI = api{key: 18, min: 0, max: apiVersionsMax, handle: handleAPIVersions}

func handleAPIVersions(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	if v := req.GetVersion(); v > apiVersionsMax {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		req.SetVersion(0)
	}
	for _, a := range b.apis.sorted() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		if a.key == 0 {
			// Advertised from v0 (KAFKA-18659); v0-2 are refused per partition.
			k.MinVersion = 0
		}
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp, nil
}
