package netinfo

// HostingASNs are autonomous systems of cloud, hosting, CDN-egress and VPN
// providers: a brokerage customer rarely trades from one. It is the one
// built-in list that the guard's "hosting" list and the watchtower start
// from; callers must not modify it.
var HostingASNs = []int64{
	13335,  // Cloudflare (WARP)
	14061,  // DigitalOcean
	14618,  // Amazon
	15169,  // Google
	16276,  // OVH
	16509,  // Amazon
	20473,  // Vultr (Choopa)
	24940,  // Hetzner
	396982, // Google Cloud
	45102,  // Alibaba
	37963,  // Alibaba
	132203, // Tencent
	136907, // Huawei Cloud
	63949,  // Akamai (Linode)
	8075,   // Microsoft
	9009,   // M247
	36352,  // ColoCrossing
	60068,  // Datacamp (CDN77)
	212238, // Datacamp
	62240,  // Clouvider
	51167,  // Contabo
	202425, // IP Volume
	9370,   // Sakura Internet
	7506,   // GMO Internet
}

// CarrierASNs are Japan's large residential and mobile carriers: each
// serves millions of customers, legitimate and hijacked alike, so sharing
// one links nobody, and an address on one says where, not who. It is the
// one built-in list that the guard's "residential" list and the watchtower
// start from; callers must not modify it.
var CarrierASNs = []int64{
	2516,   // KDDI (au)
	4713,   // NTT OCN
	17676,  // SoftBank
	9605,   // NTT Docomo
	2527,   // Sony Network Communications (So-net, NURO)
	2518,   // BIGLOBE
	4685,   // Asahi Net
	9824,   // JCOM
	17511,  // OPTAGE (eo)
	18126,  // Chubu Telecommunications (commufa)
	7679,   // QTnet
	10010,  // TOKAI Communications
	9595,   // NTT-ME
	4732,   // Yahoo Japan BB
	23637,  // Rakuten Mobile (NTT PC)
	138384, // Rakuten Mobile
}
