#include "snapshotter/storage/s3/xml.hpp"

#include <gtest/gtest.h>

using namespace snapshotter::storage;

TEST(Xml, FindsElementsByExactTag) {
    std::string_view doc =
        "<ListBucketResult><KeyCount>2</KeyCount><Contents><Key>a&amp;b</Key><Size>3</Size>"
        "</Contents><Contents><Key>c &#x20AC; &lt;d&gt;</Key><Size>4</Size></Contents>"
        "<NextContinuationToken/></ListBucketResult>";
    auto keys = xml::all(doc, "Key");
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_EQ(xml::unescape(keys[0]), "a&b");
    EXPECT_EQ(xml::unescape(keys[1]), "c \xe2\x82\xac <d>");
    EXPECT_EQ(xml::first(doc, "KeyCount"), "2");
    EXPECT_EQ(xml::first(doc, "NextContinuationToken"), "");
    EXPECT_FALSE(xml::first(doc, "IsTruncated"));
}

TEST(Xml, EscapeRoundTrips) {
    std::string text = "a&b<c>\"d'e";
    EXPECT_EQ(xml::unescape(xml::escape(text)), text);
    EXPECT_EQ(xml::unescape("&bogus; & &#xZZ;"), "&bogus; & &#xZZ;");
}
