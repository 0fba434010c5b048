package reason

import (
	"fmt"
	"strconv"
	"strings"
)

// Entry is one refusal of the catalogue: the HTTP status it maps to and its
// words in Japanese and English. Words name parameters in braces
// ("{amount_jpy}"); both languages name the same ones.
type Entry struct {
	Status int
	JA, EN string
}

// HTTP statuses, named here so that this package needs no net/http.
const (
	statusAccepted        = 202
	statusBadRequest      = 400
	statusUnauthorized    = 401
	statusForbidden       = 403
	statusNotFound        = 404
	statusConflict        = 409
	statusTooLarge        = 413
	statusUnsupported     = 415
	statusUnprocessable   = 422
	statusTooManyRequests = 429
	statusInternal        = 500
	statusUnavailable     = 503
)

// Catalogue is every refusal Kabuto words, by key: a code alone is the
// code's general words, a code and a variant ("insufficient_cash.withdraw")
// the words of one refusal. It is the one place refusals are worded.
var Catalogue = map[string]Entry{
	// General words of every code.
	BadRequest:             {statusBadRequest, "送信内容を読み取れませんでした", "The request could not be read"},
	InvalidField:           {statusBadRequest, "入力内容を確認してください", "Please check what you entered"},
	NotFound:               {statusNotFound, "見つかりません", "Not found"},
	UnknownAccount:         {statusNotFound, "口座 {account} は見つかりません", "There is no account {account}"},
	UnknownSymbol:          {statusBadRequest, "銘柄コード {symbol} の銘柄はありません", "There is no issue with the code {symbol}"},
	UnknownOrder:           {statusNotFound, "この口座に注文 {order} はありません", "There is no order {order} on this account"},
	BadLot:                 {statusBadRequest, "{symbol} は {lot} 株単位で売買します", "Issue {symbol} trades in lots of {lot} shares"},
	BadTick:                {statusBadRequest, "{price} は {symbol} の呼値（{step} 刻み）に合っていません", "The price {price} is not a valid price step for {symbol} (step {step})"},
	OutsidePriceLimit:      {statusBadRequest, "{price} は {symbol} の本日の値幅制限（{low}〜{high}）の外です", "The price {price} is outside today's price limit of {low} to {high} for {symbol}"},
	InstrumentHalted:       {statusForbidden, "{symbol} の新規買付は停止されています（{why}）", "New buy orders for {symbol} are suspended ({why})"},
	ForeignNotEnabled:      {statusForbidden, "この口座では外国株式のお取引ができません", "This account is not enabled for foreign stocks"},
	MarginNotEnabled:       {statusForbidden, "この口座では信用取引ができません", "This account is not enabled for margin trading"},
	MarketClosed:           {statusConflict, "取引時間外です。東証の取引時間は9:00〜11:30と12:30〜15:30（日本時間）です", "The market is closed; the TSE trades 9:00 to 11:30 and 12:30 to 15:30 JST"},
	InsufficientCash:       {statusConflict, "ご利用いただける金額を超えています", "That is more than the cash you have available"},
	InsufficientHoldings:   {statusConflict, "売却できる株数が足りません", "You do not hold enough shares to sell"},
	OrderNotOpen:           {statusConflict, "この注文はもう取り消せません", "This order can no longer be cancelled"},
	IdempotencyKeyRequired: {statusBadRequest, "Idempotency-Key ヘッダーを付けて送信してください（操作ごとに一意の値。再送のときだけ同じ値を使います）", "Send an Idempotency-Key header (a unique value per action, reused only when retrying it)"},
	IdempotencyKeyReused:   {statusUnprocessable, "この Idempotency-Key は別の依頼にすでに使われています", "This Idempotency-Key was already used for a different request"},
	GuardUnavailable:       {statusUnavailable, "安全確認ができなかったため、何も行いませんでした。少し待ってからお試しください", "The safety check could not run, so nothing was done; please try again in a few minutes"},
	StepUpRequired:         {statusForbidden, "この操作には追加の本人確認が必要です。もう一度お試しください", "This needs you to confirm it is you; please try again"},
	Held:                   {statusAccepted, "安全のため、この操作は当社セキュリティ担当の確認のため保留されています。結果はお知らせします", "This action is held for review by our security team for your protection; we will tell you the outcome"},
	Denied:                 {statusForbidden, "安全のため、この操作は止められました。お手数ですがお問い合わせください", "This action was stopped for your protection; please contact us"},
	Unauthenticated:        {statusUnauthorized, "ログインしてください", "Please sign in"},
	Forbidden:              {statusForbidden, "この操作は許可されていません", "This is not allowed"},
	AccountLocked:          {statusForbidden, "この操作はお客様ご自身のロックで止められています", "This is stopped by the lock you set on your account"},
	RateLimited:            {statusTooManyRequests, "試行が多すぎます。しばらく待ってからもう一度お試しください", "Too many attempts; please wait a while and try again"},
	Internal:               {statusInternal, "申し訳ありません。こちらで問題が起きました。何も変更されていません", "Something went wrong on our side; nothing was changed"},
	Unavailable:            {statusUnavailable, "この機能は現在ご利用いただけません", "This is not available on this server"},

	// Codes of the back office (cases, analyst, server, console) and the portal.
	"account_frozen":          {statusForbidden, "この口座は安全のため凍結されています。お問い合わせください", "This account is frozen for your protection; please contact us"},
	"account_not_frozen":      {statusConflict, "口座 {account} は凍結されていません", "Account {account} is not frozen"},
	"reverification_required": {statusConflict, "口座 {account} を再開する前に、凍結後の最新の確認として本人確認（登録番号への折り返し電話または書類確認）に合格している必要があります", "Account {account}: the customer's identity must be verified again (a call back to the registered number or a document check) and pass, after the freeze and as the latest check, before reopening"},
	"unknown_case":            {statusNotFound, "事案 {case} はありません", "There is no case {case}"},
	"unknown_approval":        {statusNotFound, "提案 {proposal} はありません", "There is no proposal {proposal}"},
	"already_decided":         {statusConflict, "提案 {proposal} は処理中に決定されました", "Proposal {proposal} was decided meanwhile"},
	"no_incident":             {statusConflict, "事案 {case} には記録された被害がありません", "Case {case} has no recorded incident"},
	"already_paid":            {statusConflict, "事案 {case} はすでに補償済みです", "Case {case} was already compensated"},
	"nothing_to_pay":          {statusConflict, "{method} 方式では、この被害に補償する金額はありません", "By the {method} method this incident leaves nothing to pay"},
	"not_held":                {statusConflict, "出金 {withdrawal} は確認待ちではありません", "Withdrawal {withdrawal} is not held for review"},
	"already_proposed":        {statusConflict, "出金 {withdrawal} の解除はすでに提案されています。監督者が決定します", "The release of withdrawal {withdrawal} is already proposed; a supervisor decides it"},
	"bad_month":               {statusBadRequest, "月は YYYY-MM の形で指定してください（例: 2025-04）", "Give a month as YYYY-MM, e.g. 2025-04"},
	"unknown_analyst":         {statusForbidden, "アナリスト {name} は有効ではありません", "Analyst {name} is not active"},
	"four_eyes_required":      {statusForbidden, "承認には提案者とは別の監督者が必要です", "Approving needs a second person with the supervisor role"},
	"analyst_key_required":    {statusForbidden, "この操作にはアナリスト個人の API キーが必要です", "This call needs an analyst's personal key"},
	"fresh_passkey_required":  {statusForbidden, "口座の再開にあたり、まず新しいパスキーを登録してください", "Your account was reopened: register a new passkey first"},
	"busy":                    {statusUnavailable, "混み合っています。1分後にお試しください", "Too many sign-ins at once; try again in a minute"},
	"bad_enrolment_code":      {statusUnauthorized, "登録コードは無効になりました", "That enrolment code is no longer valid"},

	// The brokerage (internal/broker).
	"unknown_symbol.lookup":              {statusNotFound, "銘柄コード {symbol} の銘柄はありません", "There is no issue with the code {symbol}"},
	"invalid_field.side":                 {statusBadRequest, "売買の区分は buy（買い）か sell（売り）で指定してください", "The side must be buy or sell"},
	"invalid_field.price_type":           {statusBadRequest, "注文方法は market（成行）か limit（指値）で指定してください", "The price_type must be market or limit"},
	"invalid_field.account_kind":         {statusBadRequest, "口座区分は cash（現物）、nisa（NISA）、margin（信用）のいずれかで指定してください", "The account_kind must be cash, nisa or margin"},
	"invalid_field.qty":                  {statusBadRequest, "株数は1株以上で指定してください", "The qty must be a positive number of shares"},
	"invalid_field.limit_price_market":   {statusBadRequest, "成行注文には指値を付けられません", "A market order takes no limit_price; limit_price is only for limit orders"},
	"invalid_field.limit_price":          {statusBadRequest, "指値注文には0より大きい指値が必要です", "A limit order needs a positive limit_price"},
	"insufficient_cash.order":            {statusConflict, "買付余力が足りません。この注文には最大 {needed_jpy} が必要です", "Not enough cash: this order needs up to {needed_jpy} available"},
	"insufficient_cash.withdraw":         {statusConflict, "出金できる金額を超えています（ご依頼 {amount_jpy}）", "That is more than you can withdraw (you asked for {amount_jpy})"},
	"insufficient_cash.available":        {statusConflict, "出金できる金額（{available_jpy}）を超えています", "That is more than you can withdraw ({available_jpy})"},
	"insufficient_holdings.sell":         {statusConflict, "{kind}の {symbol} の売却可能株数が足りません（ご注文 {qty} 株）", "Not enough {symbol} shares in the {kind} account to sell {qty}"},
	"idempotency_key_required.too_long":  {statusBadRequest, "Idempotency-Key は UTF-8 で128バイト以内にしてください", "The Idempotency-Key must be at most 128 bytes of UTF-8"},
	"idempotency_key_reused.in_progress": {statusConflict, "同じ Idempotency-Key の依頼がまだ処理中です", "A request with this Idempotency-Key is still in progress"},
	"guard_unavailable.no_answer":        {statusUnavailable, "安全確認の結果が得られなかったため、何も行いませんでした", "The safety check gave no usable answer, so nothing was done"},
	"instrument_halted.guard":            {statusForbidden, "{symbol} の新規買付は停止されています", "New buy orders for {symbol} are suspended"},
	"step_up_required.factor":            {statusForbidden, "この操作は{factor}で確認してから行ってください", "Confirm this action with {factor} first"},
	"order_not_open.cancel":              {statusConflict, "注文 {order} は{status}のため、取り消せません", "Order {order} is {status} and can no longer be cancelled"},
	"order_not_open.changed":             {statusConflict, "注文 {order} は処理中に状態が変わりました", "Order {order} changed meanwhile"},
	"order_not_open.not_held":            {statusConflict, "この操作は確認待ちではありません（すでに決定済みの可能性があります）", "This action is not waiting for review (already decided?)"},
	"invalid_field.amount_jpy":           {statusBadRequest, "金額は1円以上で指定してください", "The amount_jpy must be a positive number of yen"},
	"invalid_field.contact_field":        {statusBadRequest, "変更する項目はメールアドレス、電話番号、住所のいずれかです", "The field must be email, phone or address"},
	"invalid_field.contact_length":       {statusBadRequest, "{field}は1〜200文字で入力してください", "The {field} must be 1 to 200 characters"},
	"invalid_field.email":                {statusBadRequest, "メールアドレスの形式ではありません", "That is not an email address"},
	"invalid_field.credit":               {statusBadRequest, "入金額は1円以上で指定してください", "A credit must be a positive number of yen"},
	"invalid_field.account":              {statusBadRequest, "口座には口座番号、お名前、銀行口座、0円以上の残高が必要です", "An account needs an id, a name, a bank account and non-negative cash"},

	// Sign-in and factors (internal/identity).
	"unauthenticated.password":       {statusUnauthorized, "口座番号またはパスワードが違います", "The account number or password is wrong"},
	"account_locked.password":        {statusForbidden, "パスワードでのログインはロックされています。パスキーでログインするか、「ロックの解除」から本人確認をしてください", "Password sign-in is locked: sign in with your passkey, or choose Unlock to verify yourself"},
	"rate_limited.busy":              {statusUnavailable, "ただいまログインが混み合っています。少し待ってからもう一度お試しください", "Sign-in is busy right now; please try again in a minute"},
	"rate_limited.connection":        {statusTooManyRequests, "この接続からの試行が多すぎます。しばらく待ってからお試しください", "Too many attempts from your connection; please wait a few minutes"},
	"unauthenticated.passkey":        {statusUnauthorized, "パスキーを確認できませんでした。もう一度お試しください", "The passkey could not be verified; please try again"},
	"unauthenticated.ceremony":       {statusUnauthorized, "この確認は期限切れか、すでに使われています。もう一度最初からお試しください", "This confirmation has expired or was already used; please start again"},
	"unauthenticated.tries":          {statusUnauthorized, "コードの誤りが続いたため、この確認は無効になりました。もう一度最初からお試しください", "Too many wrong codes: this confirmation is cancelled; please start again"},
	"unauthenticated.code":           {statusUnauthorized, "コードが違うか、有効期限が切れています", "The code is wrong or has expired"},
	"step_up_required.no_passkey":    {statusForbidden, "パスキーが登録されていません", "No passkey is registered"},
	"not_found.passkey":              {statusNotFound, "そのパスキーはありません", "There is no such passkey"},
	"invalid_field.password_short":   {statusBadRequest, "パスワードは{min}文字以上にしてください", "Use at least {min} characters"},
	"invalid_field.password_long":    {statusBadRequest, "パスワードは{max}文字以内にしてください", "Use at most {max} characters"},
	"invalid_field.password_common":  {statusBadRequest, "よく使われる、または流出したパスワードに似ています。別のものにしてください", "That password is common or looks like a leaked one; choose another"},
	"invalid_field.password_word":    {statusBadRequest, "よく使われる言葉にわずかな文字を足しただけのパスワードです", "That is a common word with a few characters added; choose another"},
	"invalid_field.password_run":     {statusBadRequest, "同じ文字や連続した文字の並びだけのパスワードは使えません", "Repeated or sequential characters alone are too easy to guess"},
	"invalid_field.password_account": {statusBadRequest, "口座番号を含むパスワードは使えません", "Do not use your account number in your password"},
	"invalid_field.password_email":   {statusBadRequest, "メールアドレスを含むパスワードは使えません", "Do not use your email address in your password"},

	// The customer portal's own refusals (internal/web).
	"invalid_field.issue_code":        {statusBadRequest, "銘柄コードが見つかりません", "There is no issue with that code"},
	"invalid_field.side_qty":          {statusBadRequest, "売買と数量を正しく入力してください", "Enter the side and a quantity"},
	"account_locked.self":             {statusForbidden, "お客様のご依頼により、この操作は停止されています（{scope}）。解除は「セキュリティ」から行えます", "This is stopped by the lock you set ({scope}); you can unlock it under Security"},
	"invalid_field.withdraw_amount":   {statusBadRequest, "出金額を正しく入力してください", "Enter an amount in yen"},
	"invalid_field.bank":              {statusBadRequest, "銀行口座を入力してください", "Enter the bank account"},
	"invalid_field.contact":           {statusBadRequest, "変更する連絡先を入力してください", "Enter the new contact detail"},
	"step_up_required.stronger":       {statusForbidden, "この操作にはより強い本人確認が必要です", "This needs a stronger confirmation"},
	"bad_request.no_order":            {statusBadRequest, "注文内容がありません", "There is no order to place"},
	"bad_request.unknown_action":      {statusBadRequest, "この操作はありません", "There is no such action"},
	"forbidden.start_again":           {statusForbidden, "もう一度最初からお試しください", "Please start again"},
	"invalid_field.lock_scope":        {statusBadRequest, "ロックの範囲を選んでください", "Choose what to lock"},
	"rate_limited.genuine":            {statusTooManyRequests, "確認の回数が多すぎます。しばらくしてからお試しください", "Too many checks from here; please try again later"},
	"forbidden.confirmation_expired":  {statusForbidden, "確認の有効期限が切れました。もう一度パスキーでログインしてください", "That confirmation expired; sign in with your passkey again"},
	"guard_unavailable.signin":        {statusUnavailable, "安全確認ができなかったため、ログインできませんでした。少し待ってからお試しください", "The safety check could not run, so sign-in was stopped; please try again shortly"},
	"denied.signin":                   {statusForbidden, "安全のため、このログインは止められました。お手数ですがお電話でお問い合わせください", "This sign-in was stopped for your protection; please call us"},
	"step_up_required.signin_passkey": {statusForbidden, "いつもと違う環境からのログインのため、パスキーでのログインが必要です", "This sign-in looks unusual, so it needs your passkey"},
	"step_up_required.signin_code":    {statusForbidden, "確認コードでの確認が必要です", "This sign-in needs a one-time code as well"},
	"forbidden.page_expired":          {statusForbidden, "ページの有効期限が切れました。ページを開き直してからもう一度お試しください", "This page has expired; reload it and try again"},

	// The back office's cases (internal/cases).
	"invalid_field.case_subject":        {statusBadRequest, "事案には口座か銘柄が必要です", "A case needs an account or an instrument"},
	"invalid_field.note":                {statusBadRequest, "note に理由を書いてください（2,000バイトまで）", "Field note: say why (at most 2,000 bytes)"},
	"invalid_field.assignee":            {statusBadRequest, "担当者 {name} は有効なアナリストではありません", "Field assignee: {name} is not an active analyst"},
	"invalid_field.report":              {statusBadRequest, "届け出には口座とお客様のお話（2,000バイトまで）が必要です", "A report needs an account and what the customer said (at most 2,000 bytes)"},
	"invalid_field.freeze_account":      {statusBadRequest, "凍結する口座を指定してください", "Say which account to freeze"},
	"invalid_field.freeze_reason":       {statusBadRequest, "凍結する理由を reason に書いてください", "Field reason: say why the account is frozen"},
	"invalid_field.reason_length":       {statusBadRequest, "reason は {max} バイトまでです", "Field reason: at most {max} bytes"},
	"four_eyes_required.lift_halt":      {statusForbidden, "二名承認: {symbol} の買付停止の解除は、アナリストが提案し、提案者以外の監督者が承認します", "Lifting the halt of {symbol} needs four eyes: an analyst proposes it and a supervisor who is not the proposer approves it"},
	"bad_month.order":                   {statusBadRequest, "to（{to}）が from（{from}）より前です", "The to month ({to}) is before the from month ({from})"},
	"bad_month.span":                    {statusBadRequest, "一度に指定できるのは {max} か月までです", "At most {max} months at once"},
	"bad_month.format":                  {statusBadRequest, "{field} は YYYY-MM の形の月で指定してください（例: 2025-04）", "The {field} must be a month as YYYY-MM, e.g. 2025-04"},
	"bad_month.range":                   {statusBadRequest, "{field} は 2000-01 以降の YYYY-MM の形の月で指定してください（例: 2025-04）", "The {field} must be a month as YYYY-MM from 2000-01, e.g. 2025-04"},
	"invalid_field.incident_empty":      {statusBadRequest, "被害には不正なアクセスか約定が少なくとも1件必要です", "An incident needs at least one unauthorised access or fill"},
	"invalid_field.fill_side":           {statusBadRequest, "fills[{fill}].side {side} は buy か sell で指定してください", "Field fills[{fill}].side {side}: want buy or sell"},
	"invalid_field.fill":                {statusBadRequest, "fills[{fill}] には時刻、銘柄、正の数量と価格、0以上の手数料が必要です", "Field fills[{fill}]: a time, a symbol, a positive quantity and price, and a fee of zero or more"},
	"invalid_field.access":              {statusBadRequest, "accesses[{access}] には時刻が必要です", "Field accesses[{access}]: a time"},
	"invalid_field.snapshot_cash":       {statusBadRequest, "snapshot.cash_jpy は0以上にしてください", "Field snapshot.cash_jpy must not be negative"},
	"invalid_field.snapshot_shares":     {statusBadRequest, "snapshot.shares には銘柄と0以上の株数を指定してください", "Field snapshot.shares: symbols with zero or more shares"},
	"unknown_case.account":              {statusNotFound, "口座の事案 {case} はありません", "There is no account case {case}"},
	"already_paid.closed":               {statusConflict, "事案 {case} は補償済みのため、被害の記録は締め切られています", "Case {case} was compensated; its incident is closed"},
	"unavailable.ledger":                {statusUnavailable, "読み取る台帳がありません", "There is no ledger to read"},
	"unavailable.ledger_pay":            {statusUnavailable, "支払先の台帳がないため、何も支払っていません", "There is no ledger to pay into; nothing was paid"},
	"invalid_field.incident_window":     {statusBadRequest, "被害の期間は始まりが終わりより前である必要があります", "The incident must begin before it ends"},
	"invalid_field.compensation_method": {statusBadRequest, "補償方式 {method} はありません。half か restore です", "Method {method}: want half or restore"},
	"unknown_symbol.no_price":           {statusConflict, "{symbol} の現在値がないため、補償額を計算できません", "There is no current price of {symbol}: compensation needs one"},
	"invalid_field.verify_method":       {statusBadRequest, "確認方法 {method} はありません。callback か document です", "Method {method}: want callback or document"},
	"invalid_field.verify_result":       {statusBadRequest, "結果 {result} はありません。passed か failed です", "Result {result}: want passed or failed"},
	"invalid_field.not_halted":          {statusConflict, "{symbol} の買付は停止されていません", "Buying of {symbol} is not halted"},
	"already_decided.by":                {statusConflict, "提案 {proposal} は {analyst} さんによりすでに {status} です", "Proposal {proposal} was already {status} by {analyst}"},
	"unavailable.brokerage":             {statusUnavailable, "出金を解除する証券業務がこのサーバーにないため、何も出金していません", "There is no brokerage to release the withdrawal from; nothing left"},
	"invalid_field.proposal_kind":       {statusConflict, "種類 {kind} の提案はここでは承認できません", "Proposals of kind {kind} cannot be approved here"},
	"account_not_frozen.reopened":       {statusConflict, "口座 {account} は処理中に再開されました", "Account {account} was reopened meanwhile"},

	// Analysts (internal/analyst).
	"invalid_field.analyst_name":   {statusBadRequest, "アナリスト名 {name} は使えません。英小文字で始まる2〜40文字（英小文字・数字・.・_・-）にしてください", "Analyst name {name}: 2 to 40 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter"},
	"invalid_field.analyst_role":   {statusBadRequest, "役割 {role} はありません。analyst、supervisor、admin のいずれかです", "Role {role}: want analyst, supervisor or admin"},
	"invalid_field.analyst_exists": {statusConflict, "アナリスト {name} はすでに登録されています", "Analyst {name} already exists"},
	"unknown_analyst.lookup":       {statusNotFound, "有効なアナリスト {name} はいません", "There is no active analyst {name}"},
	"four_eyes_required.proposer":  {statusForbidden, "二名承認: {analyst} さんはこの提案者のため承認できません。別の方が承認してください", "Four eyes: {analyst} proposed this and cannot also approve it; a second person must"},
	"four_eyes_required.role":      {statusForbidden, "二名承認: 承認には監督者（supervisor）の役割が必要です。{analyst} さんの役割は {role} です", "Four eyes: approving needs the supervisor role; {analyst} is {role}"},

	// The API's own refusals (internal/server).
	"unauthenticated.no_key":    {statusUnauthorized, "API キーを Authorization: Bearer kb_… の形で送ってください", "Send an API key as Authorization: Bearer kb_…"},
	"unauthenticated.bad_key":   {statusUnauthorized, "この API キーは有効ではありません", "The API key is not valid"},
	"forbidden.scope":           {statusForbidden, "この API キーには {scope} の権限がありません", "This API key lacks the {scope} scope"},
	"bad_request.content_type":  {statusUnsupported, "Content-Type: application/json で送ってください", "Send Content-Type: application/json"},
	"bad_request.empty":         {statusBadRequest, "本文が空です。JSON オブジェクトを送ってください", "The body is empty: send a JSON object"},
	"bad_request.one_object":    {statusBadRequest, "JSON オブジェクトは1つだけ送ってください", "Send one JSON object only"},
	"invalid_field.range":       {statusBadRequest, "{field} は {min} から {max} までの整数で指定してください", "The {field} must be a whole number from {min} to {max}"},
	"invalid_field.halt_reason": {statusBadRequest, "買付を停止する理由を reason に書いてください", "Field reason: say why buying is halted"},
	"invalid_field.time":        {statusBadRequest, "{field} は RFC 3339 形式の時刻で指定してください", "The {field} must be an RFC 3339 time"},
	"unavailable.lists":         {statusUnavailable, "このサーバーはリストを持っていません", "This server keeps no lists"},
	"unavailable.guard":         {statusUnavailable, "このサーバーでは判定エンジンが動いていません", "This server runs no guard"},
	"unavailable.decisions":     {statusUnavailable, "このサーバーは判定を保存していません", "This server keeps no decisions"},
	"unavailable.alerts":        {statusUnavailable, "このサーバーはアラートを保存していません", "This server keeps no alerts"},
	"not_found.decision":        {statusNotFound, "イベント {event} の判定はありません", "There is no decision on event {event}"},

	"unauthenticated.signin_fields":   {statusUnauthorized, "口座番号とパスワードを入力してください", "Enter your account number and password"},
	"account_locked.signin":           {statusForbidden, "この口座はお客様のご依頼でログインが停止されています。解除はパスキー、または「ロックの解除」からの本人確認で行えます", "Sign-in to this account is locked at your request; unlock it with your passkey or via Unlock"},
	"step_up_required.passkey_signin": {statusForbidden, "この口座はパスキーでログインします。「パスキーでログイン」を押してください", "This account signs in with a passkey: press \"Sign in with a passkey\""},
	"invalid_field.signup_fields":     {statusBadRequest, "すべての欄を入力してください", "Please fill in every field"},
	"invalid_field.signup_name":       {statusBadRequest, "お名前は文字とスペースで、40文字以内で入力してください（数字や記号は使えません）", "Enter your name in letters and spaces, at most 40 (no digits or symbols)"},
	"unauthenticated.unlock":          {statusUnauthorized, "確認できませんでした。コードを確かめてもう一度お試しください", "We could not verify you; check the codes and try again"},

	// The analysts' console (internal/console).
	"unavailable.passkeys":                 {statusUnavailable, "このサーバーではパスキーが設定されていません", "Passkeys are not configured on this server"},
	"bad_request.ceremony_size":            {statusBadRequest, "送信内容が大きすぎます", "The request is too large"},
	"bad_request.json_object":              {statusBadRequest, "JSON オブジェクトを送ってください", "Send a JSON object"},
	"forbidden.form_expired":               {statusForbidden, "フォームの有効期限が切れました。ページを再読み込みしてください", "The form expired; reload the page"},
	"forbidden.cross_origin":               {statusForbidden, "他のサイトからの送信は受け付けません", "Cross-origin request refused: forms are accepted only from this console"},
	"four_eyes_required.lift_no_office":    {statusForbidden, "買付停止の解除には二名の承認が必要ですが、このサーバーではバックオフィスが動いていません", "Lifting a halt needs four eyes, and this server runs no back office"},
	"four_eyes_required.release_no_office": {statusForbidden, "保留中の出金の解除には二名の承認が必要ですが、このサーバーではバックオフィスが動いていません", "Releasing a held withdrawal needs four eyes, and this server runs no back office"},
	"forbidden.analyst_passkey":            {statusForbidden, "事案の操作にはパスキーでサインインしたアナリストが必要です（API キーでのセッションは初期設定専用です）", "Case actions need an analyst signed in with a passkey (an API-key session is for setting up only)"},
	"invalid_field.case_not_account":       {statusBadRequest, "この事案は口座ではなく銘柄に関するものです", "This case is about an instrument, not an account"},
	"unavailable.prices":                   {statusUnavailable, "価格がないため、補償額を計算できません", "There are no prices to work out compensation"},
	"not_found.case_action":                {statusNotFound, "事案にその操作はありません", "There is no such action on a case"},
	"unknown_approval.case":                {statusNotFound, "この事案に提案 {proposal} はありません", "There is no proposal {proposal} in this case"},

	// The back office's API (internal/server).
	"unavailable.back_office":          {statusUnavailable, "このサーバーではバックオフィスが動いていません", "This server runs no back office"},
	"four_eyes_required.lift_halt_api": {statusForbidden, "二名承認: {symbol} の買付停止の解除は、アナリストが個人の API キーで提案し（POST /api/v1/halts/{symbol}/lift）、提案者以外の監督者が承認します（POST /api/v1/approvals/提案ID）", "Lifting the halt of {symbol} needs four eyes: an analyst proposes it (POST /api/v1/halts/{symbol}/lift with the analyst's personal key) and a supervisor who is not the proposer approves it (POST /api/v1/approvals/ and the proposal's id)"},
	"analyst_key_required.issue":       {statusForbidden, "この操作にはアナリスト個人の API キーが必要です（kabuto analyst --create NAME --role ROLE で発行します）", "This call needs an analyst's personal key (kabuto analyst --create NAME --role ROLE issues one)"},
	"invalid_field.decision":           {statusBadRequest, "decision は approve（承認）か reject（却下）で指定してください", "Field decision: want approve or reject"},
	"invalid_field.incident_times":     {statusBadRequest, "from と until は RFC 3339 形式の時刻で指定してください（例: 2025-04-14T09:30:00+09:00）", "The from and until must be RFC 3339 times, e.g. 2025-04-14T09:30:00+09:00"},

	// Block, allow and watch lists (internal/pipeline).
	"invalid_field.list_name":  {statusBadRequest, "リスト名は英小文字・数字・_ で指定してください（例: block、allow、watch）", "A list name is lower-case letters, digits and _, such as block, allow or watch"},
	"invalid_field.list_entry": {statusBadRequest, "リストの項目が正しくありません: {detail}", "That list entry is not valid: {detail}"},
}

// Vocabulary words the values of Word parameters, by set and value.
var Vocabulary = map[Word]struct{ JA, EN string }{
	"factor.phishing_resistant": {"パスキー", "your passkey"},
	"factor.mfa":                {"確認コード", "a one-time code"},
	"kind.cash":                 {"現物口座", "cash"},
	"kind.nisa":                 {"NISA口座", "NISA"},
	"kind.margin":               {"信用口座", "margin"},
	"side.buy":                  {"買い", "buy"},
	"side.sell":                 {"売り", "sell"},
	"status.open":               {"注文中", "open"},
	"status.filled":             {"約定済み", "filled"},
	"status.cancelled":          {"取消済み", "cancelled"},
	"status.held":               {"確認待ち", "held for review"},
	"status.rejected":           {"不成立", "rejected"},
	"field.email":               {"メールアドレス", "email address"},
	"field.phone":               {"電話番号", "phone number"},
	"field.address":             {"住所", "address"},
	"scope.1":                   {"投資信託の買付以外のすべて（出金を含む）", "everything except buying funds (withdrawals included)"},
	"scope.2":                   {"投資信託の取引と出金以外のすべて", "everything except fund trading and withdrawals"},
	"scope.3":                   {"外国株式の取引", "foreign stock trading"},
	"scope.4":                   {"すべての取引", "all trading"},
	"scope.5":                   {"すべての取引とログイン", "all trading and sign-in"},
}

// entry returns e's catalogue entry: its key's, else its code's.
func (e *Error) entry() (Entry, bool) {
	if c, ok := Catalogue[e.Key]; ok && e.Key != "" {
		return c, true
	}
	c, ok := Catalogue[e.Code]
	return c, ok
}

// HTTPStatus returns the HTTP status e maps to: its own when New made it,
// else the catalogue's, else 500.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if c, ok := e.entry(); ok {
		return c.Status
	}
	return statusInternal
}

// Text returns e's words in lang ("en" for English, anything else for
// Japanese). A refusal made by New (or read from another server) keeps
// its own message in English; in Japanese it has its code's general words
// when they need no parameters, else its own message.
func (e *Error) Text(lang string) string {
	en := lang == "en"
	if e.Message != "" || e.Key == "" {
		if en {
			return e.Message
		}
		if c, ok := Catalogue[e.Code]; ok && !strings.Contains(c.JA, "{") {
			return c.JA
		}
		return e.Message
	}
	c, ok := e.entry()
	if !ok {
		return e.Code
	}
	if en {
		return e.fill(c.EN, true)
	}
	return e.fill(c.JA, false)
}

// fill replaces each {name} in words with the parameter's value.
func (e *Error) fill(words string, en bool) string {
	if !strings.Contains(words, "{") {
		return words
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(words, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(words[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(words[:i])
		b.WriteString(Format(e.Param(words[i+1:i+j]), en))
		words = words[i+j+1:]
	}
	b.WriteString(words)
	return b.String()
}

// Placeholders returns the parameter names that words refer to, in order.
func Placeholders(words string) []string {
	var out []string
	for {
		i := strings.IndexByte(words, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(words[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, words[i+1:i+j])
		words = words[i+j+1:]
	}
}

// Format words one parameter value: yen and whole numbers with
// separators, words from the vocabulary.
func Format(v any, en bool) string {
	switch v := v.(type) {
	case nil:
		return "?"
	case Yen:
		if en {
			return "¥" + grouped(int64(v))
		}
		return grouped(int64(v)) + "円"
	case Word:
		if w, ok := Vocabulary[v]; ok {
			if en {
				return w.EN
			}
			return w.JA
		}
		return v.Value()
	case []Word:
		s := make([]string, len(v))
		for i, w := range v {
			s[i] = Format(w, en)
		}
		if en {
			return strings.Join(s, ", ")
		}
		return strings.Join(s, "、")
	case int:
		return grouped(int64(v))
	case int64:
		return grouped(v)
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		whole, frac, ok := strings.Cut(s, ".")
		if n, err := strconv.ParseInt(whole, 10, 64); err == nil {
			whole = grouped(n)
		}
		if ok {
			return whole + "." + frac
		}
		return whole
	case error:
		return v.Error()
	}
	return fmt.Sprint(v)
}

// grouped writes n with a comma every three digits.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return sign + string(out)
}
