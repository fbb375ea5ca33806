"""Built-in held-out texts in several languages and scripts for quantization quality reports."""

HELDOUT_TEXT = """\
The river had been rising for three days before anyone in the village thought to move the \
grain. By the time the miller's son ran up the hill with the news, the water had already \
reached the lowest step of the chapel, and the old men who usually sat there arguing about \
the weather had moved their bench to the square. Nobody panicked. The village had flooded \
before, in the spring of the year the bridge was built, and again when the dam upstream \
released more water than anyone had been told it would. What people remembered from those \
years was not the water itself but the work that came after: the mud in every cellar, the \
smell of wet plaster, the way the whole street lent each other brooms and buckets.

In mathematics, a prime number is a whole number greater than one whose only divisors are \
one and itself. The first few are 2, 3, 5, 7, 11 and 13. Euclid showed more than two \
thousand years ago that there are infinitely many of them: if you multiply any finite list \
of primes together and add one, the result is not divisible by any prime on the list, so \
some prime is missing from it. The distribution of primes is irregular in detail but \
remarkably smooth on average; the number of primes below a large number n is close to n \
divided by its natural logarithm.

To make a simple loaf of bread, mix five hundred grams of flour with ten grams of salt and \
seven grams of dried yeast. Add three hundred and fifty millilitres of warm water and stir \
until no dry flour remains. Knead the dough for about ten minutes, until it is smooth and \
springs back when pressed. Leave it covered in a warm place for an hour, then shape it, let \
it rise again for forty minutes and bake it at two hundred and twenty degrees for half an \
hour. The loaf is done when it sounds hollow when tapped underneath.

The committee met on Tuesday to review the budget for the coming year. Most of the \
discussion concerned the library, whose roof has leaked since the storm in February. The \
treasurer proposed repairing it in two stages, spreading the cost over two years, but \
several members argued that a partial repair would only cost more in the end. After a long \
debate the committee voted seven to four to carry out the full repair this summer and to \
postpone the new playground until the following spring.

def moving_average(values, window):
    \"\"\"Return the mean of each run of `window` consecutive values.\"\"\"
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    result = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        result.append(total / window)
    return result

Light from the Sun takes a little over eight minutes to reach the Earth, and about four \
hours to reach Neptune. The nearest star beyond the Sun is so far away that its light, \
travelling at nearly three hundred thousand kilometres every second, needs more than four \
years to arrive. When we look at the night sky we are therefore looking into the past: \
some of the faint smudges visible through a small telescope are galaxies whose light set \
out millions of years before there were any people to see it.

She opened the letter slowly, as if the words inside might change if she hurried. It was \
short. Her grandmother wrote that the orchard had done well that autumn, that the dog was \
getting old and slept most of the day by the stove, and that the neighbours had finally \
painted their fence the colour they had been discussing for eleven years. At the bottom, \
in smaller writing, she had added: come in the spring, when the apple trees are in flower. \
I would like to show you which ones your grandfather planted.
"""

HELDOUT_TEXTS: dict[str, str] = {
    "English": HELDOUT_TEXT,
    "Chinese": """\
老周的修表铺开在巷子口，已经三十多年了。铺子很小，只放得下一张工作台和两把椅子，墙上挂满了停走\
的钟。每天早上七点，他准时拉开卷帘门，先给自己泡一杯浓茶，再戴上放大镜，把昨天没修完的表摊在绒\
布上。附近的孩子喜欢趴在玻璃柜外看他拆表，那些比米粒还小的齿轮在镊子下一颗颗排开，像一座安静的\
城市。有人问他为什么不换个大点的店面，他总是笑着说：“表走得准就行，店大了，心就乱了。”

科学家发现，蜜蜂找到花蜜后，会回到蜂巢跳一种特殊的“摇摆舞”。舞蹈中直线部分的方向，代表花丛相对\
于太阳的角度；摇摆持续的时间越长，说明距离越远。其他工蜂通过触角感受舞者的动作，就能在几公里外\
准确找到目标。更有意思的是，蜜蜂还能根据太阳在一天中的移动自动修正方向，这说明它们体内有相当精\
确的生物钟。

包饺子其实并不难。先把五百克面粉和大约二百五十毫升清水揉成光滑的面团，盖上湿布醒半个小时。馅料\
可以用猪肉末加切碎的白菜，白菜要先撒盐挤出水分，否则馅会太稀。加入姜末、葱花、生抽和少许香油，\
顺着一个方向搅拌到上劲。擀皮时中间稍厚、边缘稍薄，包好后放进开水锅里，水再次沸腾时加半碗冷水，\
重复三次，饺子浮起来就熟了。

本市第六条地铁线路于昨日上午正式开通运营。新线路全长二十八公里，共设二十二座车站，连接城东的高\
铁站和西部的大学城。据运营公司介绍，开通初期列车高峰时段的发车间隔为四分钟，预计日均客流量将达\
到十五万人次。不少市民一早就赶来体验，一位住在终点站附近的退休教师说，以前进城要倒两趟公交车，\
现在半个小时就能到。

“你明天真的要一个人去爬山吗？”
“嗯，天气预报说是晴天，我想早点出发，看看日出。”
“那你记得多带一件外套，山顶风大。到了给我发个消息。”
“放心吧，我又不是第一次去了。”
""",
    "Japanese": """\
駅前の小さなパン屋は、毎朝五時に明かりがつく。店主の佐藤さんは、もう二十年以上同じ時間に起きて\
生地をこねている。冬の朝は手がかじかむので、まずお湯で手を温めてから作業を始めるのだという。開\
店の七時になると、近所の高校生やバスを待つ会社員が次々と店に入ってきて、焼きたてのクロワッサン\
はたいてい八時前に売り切れてしまう。「同じものを毎日作っていても、天気や湿度で毎回少しずつ違う\
んです。だから飽きないんですよ」と佐藤さんは笑った。

地震が起きると、震源からはまず速く伝わるＰ波が、続いて揺れの大きいＳ波が届く。緊急地震速報は、\
この二つの波の速さの違いを利用している。震源に近い観測点でＰ波をとらえた瞬間に、コンピューター\
が震源の位置と規模を推定し、Ｓ波が到達する前に各地へ警報を送るのである。猶予は数秒から数十秒に\
すぎないが、机の下に入ったり、火を止めたりするには十分な時間になることが多い。

観葉植物を長く元気に育てるには、水のやりすぎに注意することが大切です。土の表面が乾いてから、鉢\
の底から水が流れ出るまでたっぷりと与えてください。受け皿にたまった水は根腐れの原因になるので、\
必ず捨てましょう。また、直射日光が強すぎると葉が焼けてしまうため、レースのカーテン越しの明るい\
場所に置くのがおすすめです。

昨日、県内の複数の地域で今年初めての雪が観測された。平年より一週間ほど早く、山間部では積雪が十\
センチを超えた場所もある。気象台は、今週末にかけて路面の凍結に注意するよう呼びかけている。

「ねえ、今度の連休、どこか行く？」
「うーん、人が多いところは疲れるし、家でゆっくり本でも読もうかな」
「それもいいね。じゃあ、おすすめの本があったら教えて」

月は毎年およそ三・八センチずつ地球から遠ざかっている。潮の満ち引きによって地球の自転にブレーキ\
がかかり、その分のエネルギーが月の公転に移るためだ。そのため、恐竜がいた時代の一日は今より短く\
、二十三時間ほどしかなかったと考えられている。
""",
    "Korean": """\
할머니 댁 마당에는 커다란 감나무가 한 그루 서 있었다. 가을이 되면 가지마다 주황색 감이 \
주렁주렁 열렸고, 나는 긴 장대를 들고 감을 따는 할아버지 옆에서 바구니를 붙잡고 있었다. 손이 \
닿지 않는 꼭대기의 감 몇 개는 일부러 남겨 두었는데, 할아버지는 그것이 겨울을 나는 새들의 \
몫이라고 하셨다. 그때는 그 말이 그저 재미있는 이야기인 줄만 알았지만, 지금 생각해 보면 나눔에 \
대해 처음 배운 순간이었던 것 같다.

우리 몸의 혈액은 심장에서 출발해 온몸을 한 바퀴 도는 데 약 일 분밖에 걸리지 않는다. 성인의 \
혈관을 모두 이으면 길이가 십만 킬로미터에 이르는데, 이는 지구를 두 바퀴 반 도는 거리와 \
비슷하다. 적혈구는 폐에서 받은 산소를 세포 구석구석까지 전달하고, 돌아오는 길에는 \
이산화탄소를 싣고 온다. 하나의 적혈구는 약 넉 달 동안 이 일을 반복한 뒤 비장과 간에서 \
분해된다.

김치찌개를 맛있게 끓이려면 잘 익은 김치를 쓰는 것이 가장 중요하다. 먼저 냄비에 식용유를 조금 \
두르고 돼지고기를 볶다가, 고기 색이 변하면 김치를 넣고 오 분 정도 더 볶는다. 그다음 물이나 \
멸치 육수를 붓고 고춧가루와 다진 마늘을 넣어 중불에서 이십 분쯤 끓인다. 마지막에 두부와 \
대파를 넣고 한소끔 더 끓이면 완성이다.

시는 다음 달부터 주말마다 도심의 한 차로를 막고 보행자 전용 거리로 운영한다고 밝혔다. 시 \
관계자는 상인들과 여러 차례 협의를 거쳤으며, 시범 운영 결과를 보고 확대 여부를 결정하겠다고 \
말했다.

"오늘 저녁에 뭐 먹을까?"
"비도 오는데 따뜻한 국수 어때?"
"좋아, 그럼 내가 장 봐 올게."

도서관 창가 자리는 늘 인기가 많다. 오후 네 시쯤이면 햇빛이 책상 위로 비스듬히 들어와서, \
책장을 넘길 때마다 종이가 살짝 반짝인다. 나는 그 시간을 좋아해서 일부러 수업이 끝나면 곧장 \
도서관으로 향하곤 한다.
""",
    "Arabic": """\
في صباح كل جمعة، كان جدي يأخذني معه إلى سوق الخضار القديم في وسط المدينة. كنا نخرج قبل شروق \
الشمس، حين تكون الشوارع ما زالت هادئة ورائحة الخبز الطازج تملأ الأزقة. كان يعرف معظم الباعة \
بأسمائهم، ويقف عند كل واحد منهم ليسأل عن أحوال أولاده قبل أن يسأل عن سعر الطماطم. تعلمت منه \
أن السوق ليس مكانًا للبيع والشراء فحسب، بل هو أيضًا مكان يلتقي فيه الناس ويتبادلون الأخبار \
والنصائح، وأن الابتسامة قد توفر عليك أكثر مما توفره المساومة.

تعد الشعاب المرجانية من أغنى النظم البيئية على وجه الأرض، فهي تغطي أقل من واحد في المئة من \
قاع البحار، لكنها تؤوي ربع الأنواع البحرية المعروفة تقريبًا. والمرجان في الحقيقة كائن حي صغير \
يعيش في مستعمرات ضخمة، ويتعايش مع طحالب دقيقة تمنحه ألوانه الزاهية وتزوده بالغذاء عن طريق \
التمثيل الضوئي. وعندما ترتفع حرارة المياه أكثر من اللازم، يطرد المرجان هذه الطحالب فيفقد لونه \
ويصبح أبيض، وهي ظاهرة تعرف بابيضاض المرجان. وإذا استمرت الحرارة المرتفعة لأسابيع طويلة، قد \
يموت المرجان ويتحول جزء كبير من الشعاب إلى صخور خالية من الحياة.

لتحضير كوب من الشاي بالنعناع، اغل نصف لتر من الماء، ثم ضع ملعقتين صغيرتين من الشاي الأخضر في \
إبريق وصب عليهما قليلًا من الماء الساخن. حرك الإبريق برفق وتخلص من هذا الماء الأول لإزالة \
المرارة. بعد ذلك أضف حفنة من أوراق النعناع الطازجة والسكر حسب الرغبة، واملأ الإبريق بالماء \
المغلي، واتركه على نار هادئة لثلاث دقائق. اسكب الشاي في الكؤوس من ارتفاع عال قليلًا حتى تتكون \
رغوة خفيفة على سطحه.

أعلنت بلدية المدينة يوم الأحد عن افتتاح حديقة عامة جديدة على ضفاف النهر، تمتد على مساحة خمسة \
عشر هكتارًا وتضم ممرات للمشي والدراجات وملاعب للأطفال. وقال رئيس البلدية في كلمة خلال حفل \
الافتتاح إن المشروع استغرق ثلاث سنوات، وإن أكثر من ألفي شجرة زرعت على طول الضفة. وأضاف أن \
الحديقة ستفتح أبوابها مجانًا للجميع من السادسة صباحًا حتى منتصف الليل.

- هل انتهيت من قراءة الكتاب الذي أعرتك إياه؟
- ليس بعد، بقي لي فصلان فقط، لكنني لم أستطع التوقف عن التفكير في نهايته.
- لا تخبرني بشيء إذن، أريد أن أسمع رأيك حين تنتهي.
""",
    "Hindi": """\
गर्मी की छुट्टियों में हम हर साल नानी के गाँव जाते थे। रेलगाड़ी सुबह छह बजे छोटे-से स्टेशन पर रुकती थी, जहाँ मामा \
बैलगाड़ी लेकर हमारा इंतज़ार करते थे। रास्ते के दोनों ओर आम के बाग़ थे, और हवा में पकते हुए आमों की मीठी ख़ुशबू घुली \
रहती थी। नानी का घर मिट्टी का बना था, लेकिन उसकी दीवारें इतनी मोटी थीं कि दोपहर की तेज़ धूप में भी अंदर \
ठंडक बनी रहती थी। शाम को सारे बच्चे छत पर चटाई बिछाकर लेट जाते और नानी हमें राजा-रानी की कहानियाँ \
सुनाती थीं, जब तक हम एक-एक करके सो न जाते।

मानसून भारत की खेती के लिए बहुत महत्वपूर्ण है। गर्मियों में ज़मीन समुद्र की तुलना में जल्दी गर्म हो जाती है, जिससे \
ज़मीन के ऊपर की हवा हल्की होकर ऊपर उठती है। इसकी जगह लेने के लिए हिंद महासागर से नमी से भरी हवाएँ देश की \
ओर बढ़ती हैं और पहाड़ों से टकराकर बारिश करती हैं। आमतौर पर मानसून जून की शुरुआत में केरल पहुँचता है और लगभग डेढ़ \
महीने में पूरे देश में फैल जाता है। देश की लगभग आधी खेती आज भी इसी बारिश पर निर्भर है, इसलिए मौसम विभाग के \
पूर्वानुमान पर किसानों की ख़ास नज़र रहती है।

मसाला चाय बनाने के लिए एक पतीले में दो कप पानी उबालें। उसमें थोड़ा कुटा हुआ अदरक, दो इलायची और एक छोटा \
टुकड़ा दालचीनी डालें और दो मिनट तक उबलने दें। फिर दो छोटे चम्मच चायपत्ती और स्वाद के अनुसार चीनी मिलाएँ। एक \
कप दूध डालकर आँच धीमी कर दें और चाय को तीन-चार मिनट तक पकने दें, जब तक उसका रंग गहरा भूरा न हो जाए। अंत \
में छलनी से छानकर गरमागरम परोसें।

शहर के नगर निगम ने सोमवार को घोषणा की कि अगले महीने से पुराने बाज़ार इलाक़े में प्लास्टिक की थैलियों पर पूरी \
तरह रोक लगा दी जाएगी। अधिकारियों के अनुसार दुकानदारों को कपड़े के थैले रखने के लिए तीन हफ़्ते का समय दिया \
गया है। नियम तोड़ने पर पहली बार चेतावनी दी जाएगी और उसके बाद जुर्माना लगाया जाएगा।

"कल की परीक्षा की तैयारी हो गई?"
"लगभग हो गई है, बस आख़िरी अध्याय एक बार फिर से पढ़ना है।"
"ठीक है, ज़्यादा देर तक मत जागना, सुबह जल्दी उठना है।"

हमारे मोहल्ले के पुस्तकालय में हर रविवार को बच्चों के लिए कहानी सुनाने का कार्यक्रम होता है। पिछले हफ़्ते एक बुज़ुर्ग \
शिक्षक ने पहाड़ों में रहने वाले एक चरवाहे की कहानी सुनाई, जो हर रात तारों को देखकर रास्ता पहचानता था। बच्चे \
इतने ध्यान से सुन रहे थे कि पूरे कमरे में सुई गिरने की आवाज़ भी सुनाई दे जाती।
""",
    "Code": """\
# Python: group log lines by hour and count the errors in each bucket.
from collections import Counter
from datetime import datetime


def errors_per_hour(lines):
    counts = Counter()
    for line in lines:
        stamp, level, _message = line.split(" ", 2)
        if level != "ERROR":
            continue
        hour = datetime.fromisoformat(stamp).replace(minute=0, second=0)
        counts[hour] += 1
    return sorted(counts.items())


// TypeScript: retry an async call with exponential backoff.
async function withRetry<T>(fn: () => Promise<T>, attempts = 4, baseMs = 200): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      lastError = err;
      const delay = baseMs * 2 ** i + Math.random() * 50;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  throw lastError;
}

// Rust: parse "key=value" pairs, skipping blank lines and comments.
use std::collections::HashMap;

fn parse_config(text: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => {
                map.insert(key.trim().to_string(), value.trim().to_string());
            }
            None => return Err(format!("line {}: expected key=value", number + 1)),
        }
    }
    Ok(map)
}

-- SQL: the five customers who spent the most in the last 30 days.
SELECT c.id, c.name, SUM(o.total) AS spent
FROM customers AS c
JOIN orders AS o ON o.customer_id = c.id
WHERE o.created_at >= CURRENT_DATE - INTERVAL '30 days'
  AND o.status = 'paid'
GROUP BY c.id, c.name
ORDER BY spent DESC
LIMIT 5;

# Shell: compress logs older than a week and keep the ten newest archives.
find /var/log/app -name '*.log' -mtime +7 -exec gzip {} +
ls -1t /var/log/app/*.gz | tail -n +11 | xargs -r rm --
""",
}
