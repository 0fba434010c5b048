package notify

// Kinds of the back office's notices (internal/cases): a freeze, the
// reopening after re-verification, a compensation paid.
const (
	KindAccountFrozen   Kind = "account_frozen"
	KindAccountReopened Kind = "account_reopened"
	KindCompensation    Kind = "compensation_paid"
)

// Package variables are initialised before any init function runs, and
// after the variables this one refers to: the back office's templates are
// in templateText when init parses them.
var _ = addBackOfficeTemplates()

func addBackOfficeTemplates() bool {
	Kinds = append(Kinds, KindAccountFrozen, KindAccountReopened, KindCompensation)
	for loc, set := range backOfficeText {
		for k, v := range set {
			templateText[loc][k] = v
		}
	}
	return true
}

var backOfficeText = map[string]map[Kind][2]string{
	"ja": {
		KindAccountFrozen: {"お客様の口座を凍結しました", `{{.Name}} 様

第三者による不正なログインや取引のおそれがあるため、{{.Time}} にお客様の口座でのログイン、取引、出金をすべて停止しました。
再開の前に、当社の担当者がご登録の電話番号へお電話し、ご本人であることを確認します。当社から暗証番号やパスワード、確認コードをお尋ねすることはありません。`},
		KindAccountReopened: {"口座の凍結を解除しました", `{{.Name}} 様

ご本人確認が済みましたので、{{.Time}} にお客様の口座の凍結を解除しました。
凍結の原因となった期間に追加された認証方法は削除しました。次回のログインで、新しいパスキーを登録してください。`},
		KindCompensation: {"補償金をお支払いしました", `{{.Name}} 様

不正な取引による損失の補償として、{{.Time}} に {{.Amount}} をお客様の口座へお支払いしました。
お手続きは不要です。当社から補償の申請をお願いするメールやSMSを送ることはありません。そのような連絡は偽物です。`},
	},
	"en": {
		KindAccountFrozen: {"Your account is frozen", `Dear {{.Name}},

Because someone else may have signed in or traded in your account, at {{.Time}} we stopped all sign-in, trading and withdrawals.
Before your account reopens, our staff will call your registered phone number to confirm that it is you. We never ask for your PIN, password or a code.`},
		KindAccountReopened: {"Your account is reopened", `Dear {{.Name}},

After verifying your identity we reopened your account at {{.Time}}.
Sign-in methods added during the incident were removed. At your next sign-in, please register a new passkey.`},
		KindCompensation: {"Compensation paid", `Dear {{.Name}},

At {{.Time}} we paid {{.Amount}} into your account as compensation for the loss from unauthorised trades.
You need to do nothing. We never send emails or SMS asking you to apply for compensation: any such message is fake.`},
	},
}
