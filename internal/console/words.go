package console

import (
	"fmt"
	"math"
	"strings"

	"github.com/kabuto-sec/kabuto/internal/cases"
)

// words says a reason code or a case event kind in English and Japanese,
// for analysts; an unknown code is shown as it is.
var words = map[string][2]string{
	// Surveillance and guard reasons.
	"R1_liquidate_concentrate": {"holdings sold and the cash put into one issue", "保有株を売却し、その資金を一銘柄に集中"},
	"R2_target_profile":        {"the issue looks like a pump target", "仕手の標的になりやすい銘柄"},
	"R2_price_band":            {"price in the band pumps pick", "仕手が選ぶ価格帯"},
	"R2_thin":                  {"thinly traded issue", "出来高の少ない銘柄"},
	"R3_convergence":           {"many accounts buying the same issue", "多数の口座が同じ銘柄を買付"},
	"R3_within_15m":            {"the buys came within 15 minutes", "15分以内に集中した買付"},
	"R3_repeat_buys":           {"repeated buys from one account", "同一口座からの反復買付"},
	"R4_participation_30m":     {"large share of the market's volume over 30 minutes", "30分間の出来高に占める比率が大きい"},
	"R4_participation_5m":      {"large share of the market's volume over 5 minutes", "5分間の出来高に占める比率が大きい"},
	"R5_walk_up":               {"market buys walking the price up", "成行買いで株価を押し上げ"},
	"R5_half_limit":            {"price half-way to the daily limit", "値幅制限の半分まで上昇"},
	"R6_vwap_sigma":            {"price far above its average", "平均価格から大きく乖離"},
	"R6_above_prev_close":      {"far above the previous close", "前日終値から大きく上昇"},
	"R7_ring_seller":           {"a seller that profits from the buys", "買付で利益を得る売り手"},
	"R7_matched_prints":        {"trades matched against the ring", "仕手グループとの約定"},
	"R7_accumulated":           {"the ring accumulated before", "事前の買い集め"},
	"R7_ring_attempt":          {"an attempt to sell to hijacked accounts", "乗っ取り口座への売却の試み"},
	"R9_spike_reversal":        {"spike then reversal", "急騰後の反落"},
	"R10_campaign":             {"part of a campaign across accounts", "複数口座にまたがる攻撃の一部"},
	"new_device":               {"new device", "新しい端末"},
	"new_network":              {"new network", "新しいネットワーク"},
	"foreign_ip":               {"address abroad", "海外のIPアドレス"},
	"hosting_asn":              {"hosting provider's network", "ホスティング事業者のネットワーク"},
	"proxy":                    {"proxy or VPN", "プロキシまたはVPN"},
	"fast_login":               {"sign-in faster than a person types", "人の操作より速いサインイン"},
	"shared_ip":                {"address shared with other flagged accounts", "他の検知口座と同じIPアドレス"},
	"shared_asn":               {"network shared with other flagged accounts", "他の検知口座と同じネットワーク"},
	"shared_device":            {"device shared with other accounts", "他の口座と同じ端末"},
	"guard_flagged":            {"flagged by the guard", "ガードが検知"},
	"guard_refused":            {"refused by the guard", "ガードが拒否"},
	"passkey":                  {"signed in with a passkey", "パスキーでサインイン"},
	"instrument_unknown":       {"issue unknown to surveillance", "監視対象外の銘柄"},
	"session_ip_change":        {"address changed within a session", "セッション中のIPアドレス変更"},
	"sold_holdings":            {"the customer's holdings sold", "顧客の保有株を売却"},
	"known_device":             {"known device", "登録済みの端末"},
	"no_client_context":        {"the gateway sent no device or address", "端末・IPアドレスの情報なし"},
	"R11_abnormal_buying":      {"one account buying far more of the issue than usual", "一口座による通常を大きく超える買付"},
	"immature_profile":         {"too little history to call a device or network new", "履歴が少なく新しい端末・ネットワークか判断できない"},
	"no_hijack_signal":         {"no sign of takeover, so not acted on", "乗っ取りの兆候がないため措置なし"},
	"account_frozen":           {"account frozen", "口座凍結中"},
	// Case events.
	"alert":                     {"surveillance alert", "監視アラート"},
	"held_action":               {"action held for review", "確認のため保留された操作"},
	"customer_report":           {"the customer reported it", "顧客からの申告"},
	"freeze":                    {"account frozen", "口座を凍結"},
	"halt":                      {"buying halted", "買付停止"},
	"note":                      {"note", "メモ"},
	"incident":                  {"incident recorded", "被害内容を記録"},
	"reverification":            {"identity re-verified", "本人確認を再実施"},
	"proposed_reopen":           {"reopening proposed", "凍結解除を提案"},
	"approved_reopen":           {"reopening approved", "凍結解除を承認"},
	"rejected_reopen":           {"reopening rejected", "凍結解除を却下"},
	"proposed_compensation":     {"compensation proposed", "補償を提案"},
	"approved_compensation":     {"compensation approved and paid", "補償を承認・支払"},
	"rejected_compensation":     {"compensation rejected", "補償を却下"},
	"proposed_lift_halt":        {"lifting the halt proposed", "買付停止の解除を提案"},
	"approved_lift_halt":        {"halt lifted", "買付停止を解除"},
	"rejected_lift_halt":        {"lifting the halt rejected", "買付停止の解除を却下"},
	"assigned":                  {"assignee set", "担当を設定"},
	"proposed_release_proceeds": {"release of the held withdrawal proposed", "保留中の出金の解放を提案"},
	"approved_release_proceeds": {"held withdrawal released", "保留中の出金を解放"},
	"rejected_release_proceeds": {"release of the held withdrawal rejected", "保留中の出金の解放を却下"},
	// Re-verification and compensation.
	"callback": {"call back to the registered phone number", "登録電話番号への折り返し電話"},
	"document": {"identity document check", "本人確認書類の確認"},
	"passed":   {"passed", "確認済み"},
	"failed":   {"failed", "確認できず"},
	"half":     {"50% of the loss, fees and ¥10,000", "損失の50%・手数料・1万円"},
	"restore":  {"restoration of the positions (原状回復)", "原状回復"},
	"paid":     {"paid", "支払済み"},
	"proposed": {"proposed, waiting for a supervisor", "提案中(監督者の承認待ち)"},
	"rejected": {"rejected", "却下"},
}

// say returns code in words, "English · 日本語".
func say(code string) string {
	if w, ok := words[code]; ok {
		return w[0] + " · " + w[1]
	}
	return strings.ReplaceAll(code, "_", " ")
}

// sayAll returns text with every known reason code in it said in words;
// the rest stays as it is.
func sayAll(text string) string {
	fs := strings.Fields(text)
	changed := false
	for i, f := range fs {
		core := strings.Trim(f, ",;.:")
		if w, ok := words[core]; ok && core != "" {
			fs[i] = strings.Replace(f, core, w[0]+" ("+w[1]+")", 1)
			changed = true
		}
	}
	if !changed {
		return text
	}
	return strings.Join(fs, " ")
}

// num writes n with thousands separators, keeping up to two decimals.
func num(n float64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	whole := int64(n)
	s := strings.TrimPrefix(cases.Yen(whole), "¥")
	if frac := int64(math.Round((n - float64(whole)) * 100)); frac > 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%02d", frac), "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}
