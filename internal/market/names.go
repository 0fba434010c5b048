package market

import "strings"

// listedJA holds the Japanese names of the listed issues of the universe.
var listedJA = map[string]string{
	"7203": "トヨタ自動車", "6758": "ソニーグループ", "8306": "三菱UFJフィナンシャル・グループ",
	"9984": "ソフトバンクグループ", "9432": "日本電信電話", "7974": "任天堂", "8035": "東京エレクトロン",
	"6861": "キーエンス", "9983": "ファーストリテイリング", "6501": "日立製作所", "8058": "三菱商事",
	"4502": "武田薬品工業", "7267": "本田技研工業", "8316": "三井住友フィナンシャルグループ",
	"6098": "リクルートホールディングス", "2914": "日本たばこ産業", "4661": "オリエンタルランド",
	"9101": "日本郵船", "7011": "三菱重工業", "5401": "日本製鉄",
	"0700.HK": "テンセント・ホールディングス", "9988.HK": "アリババ・グループ",
	"600519.SH": "貴州茅台酒", "601318.SH": "中国平安保険",
}

// The fictional names' parts in Japanese, by their romaji in nameHeads,
// nameTails and nameKinds.
var (
	headJA = map[string]string{"Hoshi": "星", "Kawa": "川", "Yama": "山", "Mori": "森", "Asa": "朝", "Taka": "高",
		"Kita": "北", "Minami": "南", "Aoi": "葵", "Shiro": "白", "Kuro": "黒", "Hana": "花", "Umi": "海",
		"Sora": "空", "Kaze": "風", "Tsuki": "月"}
	tailJA = map[string]string{"no": "野", "ta": "田", "mura": "村", "kawa": "川", "shima": "島", "moto": "本",
		"sawa": "沢", "oka": "岡", "hara": "原", "zaki": "崎"}
	kindJA = map[string]string{"Kogyo": "工業", "Shoji": "商事", "Seisakusho": "製作所", "Denki": "電気",
		"Kasei": "化成", "Foods": "フーズ", "Holdings": "ホールディングス", "Tech": "テック",
		"Trading": "トレーディング", "Pharma": "ファーマ"}
)

// NameIn returns in's name for a reader of lang ("ja" or anything else for
// English): the listed issues' Japanese names, the simulated issues' names
// in kanji and kana (marked 模擬 as the English ones are marked sim), and
// the English name where no Japanese one is known.
func (in Instrument) NameIn(lang string) string {
	if lang != "ja" {
		return in.Name
	}
	if ja, ok := listedJA[in.Symbol]; ok {
		return ja
	}
	if ja, ok := simNameJA(in.Name); ok {
		return ja
	}
	return in.Name
}

// simNameJA reads a name made by Universe ("Hoshino Kogyo (sim)") back
// into Japanese ("星野工業（模擬）").
func simNameJA(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, " (sim)")
	if !ok {
		return "", false
	}
	stem, kind, ok := strings.Cut(base, " ")
	if !ok || kindJA[kind] == "" {
		return "", false
	}
	for head, h := range headJA {
		if rest, ok := strings.CutPrefix(stem, head); ok && tailJA[rest] != "" {
			return h + tailJA[rest] + kindJA[kind] + "（模擬）", true
		}
	}
	return "", false
}
